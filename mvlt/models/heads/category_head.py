"""Category / sub-category recognition head (M-CR and S-CR)."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mvlt.registry import MODELS
from ..backbones import VLFeatures
from .base_head import BaseVLHead


def _masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                          ignore_index: int) -> torch.Tensor:
    valid = labels != ignore_index
    loss = F.cross_entropy(
        logits.float(), labels, ignore_index=ignore_index, reduction='sum')
    return loss / valid.sum().clamp_min(1)


@MODELS.register_module()
class CategoryHead(BaseVLHead):
    """Two independent classifiers on the [CLS] of T^4 (paper section 3.3).

    Each has its own pooler (Linear + LayerNorm) and FC layer: one for the
    ``num_categories`` main categories (48 on Fashion-Gen), one for the
    ``num_subcategories`` sub-categories (122).

    Args:
        num_categories (int): Classes of the main category.
        num_subcategories (int): Classes of the sub-category.
        in_channels (int, optional): Width of T^4; None: the backbone's
            (filled in by the model).
        hidden_channels (int): Pooler width.
        ignore_index (int): Label value that carries no loss (unknown
            category in a test split).
        loss_weight (float): Weight of each of the two losses.
        norm_eps (float): LayerNorm epsilon of the two poolers.
    """

    requires = ('visual', 'text')

    def __init__(self,
                 num_categories: int = 48,
                 num_subcategories: int = 122,
                 in_channels: Optional[int] = 512,
                 hidden_channels: int = 768,
                 ignore_index: int = -1,
                 loss_weight: float = 1.0,
                 norm_eps: float = 1e-5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        pooler = dict(
            type='CLSPooler',
            in_channels=in_channels,
            out_channels=hidden_channels,
            norm_eps=norm_eps)
        self.category_neck = MODELS.build(pooler)
        self.subcategory_neck = MODELS.build(pooler)
        self.category_fc = nn.Linear(hidden_channels, num_categories)
        self.subcategory_fc = nn.Linear(hidden_channels, num_subcategories)
        self.num_categories = num_categories
        self.num_subcategories = num_subcategories
        self.ignore_index = ignore_index

    def forward(self, feats: VLFeatures) -> tuple:
        """Logits (B, num_categories) and (B, num_subcategories)."""
        text = feats.text[-1]
        return (self.category_fc(self.category_neck(text)),
                self.subcategory_fc(self.subcategory_neck(text)))

    def loss(self, feats: VLFeatures,
             batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        category_logits, subcategory_logits = self(feats)
        loss_cat = _masked_cross_entropy(category_logits,
                                         batch['category_labels'],
                                         self.ignore_index)
        loss_sub = _masked_cross_entropy(subcategory_logits,
                                         batch['subcategory_labels'],
                                         self.ignore_index)
        return dict(
            loss_category=loss_cat * self.loss_weight,
            loss_subcategory=loss_sub * self.loss_weight)

    def predict(self, feats: VLFeatures,
                batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Class probabilities ``category_scores``, ``subcategory_scores``."""
        category_logits, subcategory_logits = self(feats)
        return dict(
            category_scores=category_logits.float().softmax(dim=1),
            subcategory_scores=subcategory_logits.float().softmax(dim=1))
