"""Common interface of the MVLT heads."""
from typing import Dict, Optional

import torch
from mmengine.model import BaseModule

from ..backbones import VLFeatures


class BaseVLHead(BaseModule):
    """A head reads :class:`VLFeatures` and the preprocessed batch.

    ``loss`` returns a dict whose ``loss_*`` entries are already multiplied by
    ``loss_weight`` (other entries are logged only); ``predict`` returns a
    dict of per-sample tensors (first dimension = batch).

    Args:
        loss_weight (float): Weight of the head's loss in the total
            (the paper's w_1, w_2, w_3).
    """

    #: The modalities the head reads: a subset of {'visual', 'text'}.
    requires: tuple = ('visual', 'text')
    #: Whether the head needs the masked images (MIR): with
    #: ``MVLT(masked_image_pass='separate')`` only such heads read them.
    uses_masked_images: bool = False
    #: What its training batches must hold (see
    #: ``MVLTDataPreprocessor.set_training_needs``): ``'itm_pairs'``,
    #: ``'text_mask'``, ``'image_mask'``.
    batch_needs: tuple = ()

    def __init__(self,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = float(loss_weight)

    def loss(self, feats: VLFeatures,
             batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f'{type(self).__name__} has no loss.')

    def predict(self, feats: VLFeatures,
                batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f'{type(self).__name__} cannot predict.')
