"""Image-text matching (ITM) head."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mvlt.registry import MODELS
from ..backbones import VLFeatures
from ..necks import CLSPooler
from .base_head import BaseVLHead


@MODELS.register_module()
class ITMHead(BaseVLHead):
    """2-way matching classifier on the pooled [CLS] of T^4 (paper eq. 6).

    Args:
        neck (dict): The pooler (``CLSPooler``: Linear 512 -> 768 +
            LayerNorm).
        num_classes (int): 2 (not matched / matched).
        loss_weight (float): w_2 (1 in the paper).
    """

    requires = ('visual', 'text')
    batch_needs = ('itm_pairs', )

    def __init__(self,
                 neck: dict = dict(
                     type='CLSPooler', in_channels=512, out_channels=768),
                 num_classes: int = 2,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        self.neck = MODELS.build(neck)
        self.fc = nn.Linear(self.neck.out_channels, num_classes)

    @property
    def text_queries(self) -> Optional[int]:
        """Leading caption tokens of T^4 the head reads: 1 ([CLS]) with a
        ``CLSPooler`` on position 0, else None (all of them)."""
        if isinstance(self.neck, CLSPooler) and self.neck.index == 0:
            return 1
        return None

    def forward(self, feats: VLFeatures) -> torch.Tensor:
        """Matching logits (B, num_classes)."""
        return self.fc(self.neck(feats.text[-1]))

    def loss(self, feats: VLFeatures,
             batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        logits = self(feats)
        labels = batch['itm_labels']
        loss = F.cross_entropy(logits.float(), labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return dict(loss_itm=loss * self.loss_weight, itm_acc=accuracy)

    def predict(self, feats: VLFeatures,
                batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``itm_score``: the matching probability, (B,)."""
        logits = self(feats).float()
        return dict(itm_score=logits.softmax(dim=1)[:, -1])
