"""Text-guided image retrieval (TGIR, composed retrieval) head.

A query is a reference image and a modification text ("is red and has
short sleeves"); the answer is the gallery image that matches both
(FashionIQ). MVLT's joint encoder takes the image and the text in one pass,
which is the query encoder here; the gallery side is the ITC image tower
(image-only pass, :meth:`ITCHead.embed_images`), so a catalogue indexed for
text search answers composed queries too. As in FashionViL / FAME-ViL's TGIR
fine-tuning, query and target embeddings are trained with a batch-wise
contrastive loss.
"""
import math
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mvlt.registry import MODELS
from ..backbones import VLFeatures
from ..utils import gather_with_local_grad
from .base_head import BaseVLHead

POOLINGS = ('cls', 'cls+visual')


def bind_gallery_heads(heads: nn.ModuleDict) -> None:
    """Give each head that ranks gallery images (``bind_gallery_head``:
    the TGIR head) the head whose image embeddings form the gallery
    (``head.gallery_head``, the ITC head). MVLT calls it once it has built
    its heads.

    Raises:
        KeyError: The gallery head is not among ``heads``.
    """
    for name, head in heads.items():
        if not hasattr(head, 'bind_gallery_head'):
            continue
        if head.gallery_head not in heads:
            raise KeyError(
                f'MVLT: head {name!r} ranks {head.gallery_head!r} image '
                f'embeddings, but model.heads builds only {sorted(heads)}; '
                f"add model.heads.{head.gallery_head} (type='ITCHead').")
        head.bind_gallery_head(heads[head.gallery_head])


@MODELS.register_module()
class TGIRHead(BaseVLHead):
    """Composed query embedding + InfoNCE against target image embeddings.

    Query: the [CLS] token of T^4 of the joint (reference image,
    modification text) pass through ``text_proj``; with ``pooling=
    'cls+visual'`` plus the mean of the pass's V^4 tokens through the
    gallery head's own visual projection (the ITC image projection), so that
    at the start of fine-tuning the query already lies near its reference
    image in the gallery space and the text learns the change (the
    element-wise sum of image and text features of CLIP4Cir, Baldrati et
    al. 2022). ``text_proj`` starts at zero for the same reason. The sum is
    L2-normalised. Gallery: ``batch['gallery_embeds']`` (B, D), the
    L2-normalised ITC image embeddings of the target images that the model
    computes (:meth:`MVLT.embed_images` at test time).

    The loss is the cross-entropy of each query over every target of the
    (global) batch, cosine similarities over a learnable temperature
    (clamped to ``temperature_range``); other rows with the same target
    (``batch['product_index']``) are not negatives.

    Args:
        in_channels (int): Width of T^4 and V^4 (None in a config: the
            backbone's last stage).
        embed_dim (int): Width of the gallery (ITC) embedding.
        pooling (str): ``'cls'`` or ``'cls+visual'``.
        gallery_head (str): Name of the head whose ``embed_images`` gives
            the gallery embeddings (``'itc'``); the model binds it
            (:meth:`bind_gallery_head`).
        temperature (float): Initial temperature (0.07, CLIP).
        temperature_range (tuple): Clamp of the learned temperature.
        loss_weight (float): Weight of the loss.
    """

    requires = ('visual', 'text')
    batch_needs = ('gallery_embeds', )

    def __init__(self,
                 in_channels: int = 512,
                 embed_dim: int = 256,
                 pooling: str = 'cls+visual',
                 gallery_head: str = 'itc',
                 temperature: float = 0.07,
                 temperature_range: tuple = (0.001, 0.5),
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        if pooling not in POOLINGS:
            raise ValueError(f'TGIRHead: pooling must be one of {POOLINGS}, '
                             f'got {pooling!r}.')
        self.pooling = pooling
        self.gallery_head = gallery_head
        self.text_proj = nn.Linear(in_channels, embed_dim)
        nn.init.zeros_(self.text_proj.weight)
        nn.init.zeros_(self.text_proj.bias)
        self.log_temperature = nn.Parameter(
            torch.tensor(math.log(temperature)))
        self.temperature_range = tuple(temperature_range)
        # A plain list keeps the bound head out of this module's parameters
        # and state dict (it is the model's heads[gallery_head]).
        self._gallery: list = []

    def init_weights(self) -> None:
        """Keep ``text_proj`` at zero (MMEngine's init would redraw it)."""
        super().init_weights()
        nn.init.zeros_(self.text_proj.weight)
        nn.init.zeros_(self.text_proj.bias)

    def bind_gallery_head(self, head: nn.Module) -> None:
        """Use ``head.visual_proj`` / ``head.embed_images`` (the ITC head)
        for the gallery side and the query's visual part."""
        if not hasattr(head, 'visual_proj'):
            raise TypeError(f'TGIRHead: gallery head {type(head).__name__} '
                            'has no visual_proj; use an ITCHead.')
        if head.visual_proj.out_features != self.text_proj.out_features:
            raise ValueError(
                f'TGIRHead: embed_dim {self.text_proj.out_features} differs '
                f'from the gallery head\'s {head.visual_proj.out_features}.')
        self._gallery[:] = [head]

    @property
    def text_queries(self) -> Optional[int]:
        """1 ([CLS] only) with ``pooling='cls'``; None when V^4 is read."""
        return 1 if self.pooling == 'cls' else None

    @property
    def temperature(self) -> torch.Tensor:
        """The clamped temperature (scalar tensor)."""
        low, high = self.temperature_range
        return self.log_temperature.exp().clamp(low, high)

    def embed_queries(self, feats: VLFeatures) -> torch.Tensor:
        """Joint-pass features -> L2-normalised (B, embed_dim) queries."""
        query = self.text_proj(feats.text[-1][:, 0])
        if self.pooling == 'cls+visual':
            if not self._gallery:
                raise RuntimeError('TGIRHead: no gallery head bound; build '
                                   'it inside MVLT with an ITC head.')
            pooled = feats.visual[-1].flatten(2).mean(dim=2)
            query = query + self._gallery[0].visual_proj(pooled)
        return F.normalize(query.float(), dim=-1)

    def loss(self, feats: VLFeatures,
             batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """InfoNCE of each query over the batch's target embeddings."""
        if batch.get('gallery_embeds') is None:
            raise KeyError('TGIRHead: the batch has no gallery_embeds; '
                           'train on TGIR samples (PackTGIRInputs puts the '
                           'target image in gallery_images).')
        queries = self.embed_queries(feats)
        rows = queries.shape[0]
        gallery, offset = gather_with_local_grad(
            batch['gallery_embeds'][:rows])
        logits = queries @ gallery.t() / self.temperature
        targets = offset + torch.arange(rows, device=logits.device)
        if batch.get('product_index') is not None:
            local = batch['product_index'][:rows]
            everyone, _ = gather_with_local_grad(local)
            same = local[:, None] == everyone[None, :]
            same[torch.arange(rows), targets] = False
            logits = logits.masked_fill(same, float('-inf'))
        loss = F.cross_entropy(logits, targets)
        accuracy = (logits.argmax(dim=1) == targets).float().mean()
        return dict(
            loss_tgir=loss * self.loss_weight,
            tgir_acc=accuracy,
            tgir_temperature=self.temperature.detach())

    def predict(self, feats: VLFeatures,
                batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``tgir_query_embeds``: (B, embed_dim) L2-normalised queries."""
        return dict(tgir_query_embeds=self.embed_queries(feats))
