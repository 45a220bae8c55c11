"""Image-text contrastive (ITC) head on unimodal passes of the encoder.

MVLT itself scores pairs with the ITM cross-encoder only; ranking a whole
gallery that way costs one encoder pass per (query, item) pair. As in BLIP
(and mmpretrain's BLIP retrieval), an optional contrastive objective on
image-only and text-only passes of the same encoder gives embeddings whose
dot products pick the top-k candidates cheaply; the ITM head then re-ranks
only those.
"""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mvlt.registry import MODELS
from ..backbones import UnimodalFeatures, VLFeatures
from ..utils import gather_with_local_grad
from .base_head import BaseVLHead


@MODELS.register_module()
class ITCHead(BaseVLHead):
    """Projections + symmetric InfoNCE over the batch's matched pairs.

    The image embedding is the mean of the V^4 tokens of the image-only
    pass; the text embedding is the [CLS] token of T^4 of the text-only
    pass. Each goes through its own linear projection to ``embed_dim`` and is
    L2-normalised; logits are cosine similarities divided by a learnable
    temperature (clamped to ``temperature_range``). Captions of the same
    product as the row's own (another photo of it in the batch) are left out
    of the negatives.

    ``predict`` returns ``itc_image_embeds`` and / or ``itc_text_embeds``
    (B, embed_dim), for whichever modality the batch holds.

    Args:
        visual_channels (int): Width of V^4 (512 for tiny).
        text_channels (int): Width of T^4.
        embed_dim (int): Width of the shared embedding space.
        temperature (float): Initial temperature (0.07, as CLIP / BLIP).
        temperature_range (tuple): Clamp of the learned temperature.
        loss_weight (float): Weight of the ITC loss in the total.
        gather_with_grad (bool): Under DDP, gather the other ranks'
            embeddings with their gradient, so that the summed gradient is
            exactly the single-process gradient of the global batch
            (OpenCLIP's ``--gather-with-grad``). Default False: the gathered
            rows are constants (ALBEF / BLIP), each rank's gradient keeps
            only its own rows' terms (the loss is the same; the gradient
            differs, measured in docs/benchmark.md).
    """

    requires = ('visual_only', 'text_only')

    def __init__(self,
                 visual_channels: int = 512,
                 text_channels: int = 512,
                 embed_dim: int = 256,
                 temperature: float = 0.07,
                 temperature_range: tuple = (0.001, 0.5),
                 loss_weight: float = 1.0,
                 gather_with_grad: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        self.gather_with_grad = gather_with_grad
        self.visual_proj = nn.Linear(visual_channels, embed_dim)
        self.text_proj = nn.Linear(text_channels, embed_dim)
        self.log_temperature = nn.Parameter(
            torch.tensor(math.log(temperature)))
        self.temperature_range = tuple(temperature_range)
        self.embed_dim = embed_dim

    @property
    def temperature(self) -> torch.Tensor:
        """The clamped temperature (scalar tensor).

        The clamp passes the gradient through (straight-through: the value
        is clamped, the gradient is that of the unclamped parameter), so a
        temperature on a bound can still move back inside.
        """
        low, high = self.temperature_range
        log_temperature = self.log_temperature
        clamped = log_temperature.clamp(math.log(low), math.log(high))
        return (log_temperature + (clamped - log_temperature).detach()).exp()

    @torch.no_grad()
    def clamp_temperature_(self) -> None:
        """Clamp ``log_temperature`` itself into ``temperature_range``.

        Done before every training pass, as CLIP / open_clip clamp the
        logit scale in place after each step: the clamp in
        :attr:`temperature` then never cuts the gradient, whereas a
        parameter left outside the range would get none and stay there
        (CLIP #46).
        """
        low, high = self.temperature_range
        self.log_temperature.clamp_(math.log(low), math.log(high))

    def embed_images(self, visual: VLFeatures) -> torch.Tensor:
        """Image-only features -> L2-normalised (B, embed_dim)."""
        pooled = visual.visual[-1].flatten(2).mean(dim=2)
        return F.normalize(self.visual_proj(pooled).float(), dim=-1)

    def embed_texts(self, text: VLFeatures) -> torch.Tensor:
        """Text-only features -> L2-normalised (B, embed_dim)."""
        return F.normalize(self.text_proj(text.text[-1][:, 0]).float(), dim=-1)

    def logits(self,
               feats: UnimodalFeatures,
               across_ranks: bool = True) -> Tuple[torch.Tensor, ...]:
        """Image-to-caption and caption-to-image similarity logits.

        Under DDP the other ranks' embeddings are gathered (without their
        gradients, as ALBEF and BLIP do, unless ``gather_with_grad``), so
        every image meets every caption of the global batch.

        Returns:
            tuple: ``i2t`` (B, W * B) and ``t2i`` (B, W * B) logits (cosine
            similarity over the temperature) and ``offset``, the column of
            this rank's first row.
        """
        if feats.visual is None or feats.text is None:
            raise ValueError('ITCHead needs the image-only and the '
                             'text-only pass; the batch lacks images or '
                             'captions.')
        if self.training:
            self.clamp_temperature_()
        images = self.embed_images(feats.visual)
        texts = self.embed_texts(feats.text)
        all_images, offset = gather_with_local_grad(images, across_ranks,
                                                    self.gather_with_grad)
        all_texts, _ = gather_with_local_grad(texts, across_ranks,
                                              self.gather_with_grad)
        scale = 1.0 / self.temperature
        return images @ all_texts.t() * scale, texts @ all_images.t() * \
            scale, offset

    def loss(self, feats: UnimodalFeatures,
             batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Symmetric InfoNCE; row i of both passes is a matched pair.

        Other rows that match row i (the same product in another photo, or
        an identical caption: ``batch['caption_id']``) are left out of its
        negatives.
        """
        i2t, t2i, offset = self.logits(feats)
        rows = i2t.shape[0]
        targets = offset + torch.arange(rows, device=i2t.device)
        positive = None
        for key in ('product_index', 'caption_id'):
            if batch.get(key) is not None:
                local = batch[key][:rows]
                everyone, _ = gather_with_local_grad(local)
                same = local[:, None] == everyone[None, :]
                positive = same if positive is None else positive | same
        if positive is not None:
            positive[torch.arange(rows), targets] = False
            i2t = i2t.masked_fill(positive, float('-inf'))
            t2i = t2i.masked_fill(positive, float('-inf'))
        loss = (F.cross_entropy(i2t, targets) +
                F.cross_entropy(t2i, targets)) / 2
        accuracy = (i2t.argmax(dim=1) == targets).float().mean()
        return dict(
            loss_itc=loss * self.loss_weight,
            itc_acc=accuracy,
            itc_temperature=self.temperature.detach())

    def predict(self, feats: UnimodalFeatures,
                batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``itc_image_embeds`` / ``itc_text_embeds`` (B, embed_dim)."""
        outputs = {}
        if feats.visual is not None:
            outputs['itc_image_embeds'] = self.embed_images(feats.visual)
        if feats.text is not None:
            outputs['itc_text_embeds'] = self.embed_texts(feats.text)
        return outputs
