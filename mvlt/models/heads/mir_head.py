"""Masked image reconstruction (MIR): a U-Net decoder and smooth-L1 loss."""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from mvlt.registry import MODELS
from ..backbones import VLFeatures
from ..utils import num_loss_rows
from .base_head import BaseVLHead


@MODELS.register_module()
class UNetDecoder(nn.Module):
    """4-level U-Net decoder over the pyramid {V^1..V^4} -> full-size image.

    From the stride-32 map it goes up one level at a time: bilinear x2,
    concatenation with the skip map of that stride, ``num_convs`` 3x3
    conv-BN-ReLU. At stride 4 (V^1) a 1x1 conv predicts ``out_channels *
    up_factor^2`` values per position, rearranged to the full resolution by a
    pixel shuffle (no full-resolution convolution: that would cost more than
    the encoder).

    Args:
        in_channels (Sequence[int]): Widths of V^1..V^4.
        channels (Sequence[int]): Decoder widths at strides 16, 8, 4.
        num_convs (int): Convolutions per level.
        out_channels (int): Image channels.
        up_factor (int): Stride of V^1 (the stage-1 patch size P).
        norm_cfg (dict): Norm layer of the convolutions.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (64, 128, 320, 512),
                 channels: Sequence[int] = (256, 128, 64),
                 num_convs: int = 2,
                 out_channels: int = 3,
                 up_factor: int = 4,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        if len(in_channels) != 4 or len(channels) != 3:
            raise ValueError('UNetDecoder needs 4 in_channels and 3 channels, '
                             f'got {in_channels} and {channels}.')
        self.levels = nn.ModuleList()
        previous = in_channels[3]
        for level, width in enumerate(channels):
            skip = in_channels[2 - level]
            convs = [
                ConvModule(
                    previous + skip if i == 0 else width,
                    width,
                    3,
                    padding=1,
                    norm_cfg=norm_cfg) for i in range(num_convs)
            ]
            self.levels.append(nn.Sequential(*convs))
            previous = width
        self.up_factor = up_factor
        self.predict_pixels = nn.Conv2d(previous, out_channels * up_factor**2,
                                        1)
        self.shuffle = nn.PixelShuffle(up_factor)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """feats: V^1..V^4 -> (B, out_channels, P * h1, P * w1)."""
        x = feats[3]
        for level, block in enumerate(self.levels):
            skip = feats[2 - level]
            x = F.interpolate(
                x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.shuffle(self.predict_pixels(x))


@MODELS.register_module()
class MIRHead(BaseVLHead):
    """Masked image reconstruction head (paper eq. 5).

    Decodes the pyramid features of the masked image into the whole image
    and compares it with the unmasked, normalised input by smooth-L1.

    Args:
        decoder (dict): Decoder config (``UNetDecoder`` by default; the
            reference implementation's partial decoder is another type).
        loss_weight (float): w_1 (10 in the paper).
        loss_region (str): ``'all'`` pixels (the paper) or ``'masked'``
            pixels only.
        beta (float): Smooth-L1 transition point (1.0, eq. 5).
        pairs (str): ``'matched'`` (only image-caption pairs that match,
            default) or ``'all'`` rows of the batch.
    """

    requires = ('visual', )
    uses_masked_images = True
    batch_needs = ('image_mask', )

    def __init__(self,
                 decoder: dict = dict(type='UNetDecoder'),
                 loss_weight: float = 10.0,
                 loss_region: str = 'all',
                 beta: float = 1.0,
                 pairs: str = 'matched',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        if loss_region not in ('all', 'masked'):
            raise ValueError("MIRHead: loss_region must be 'all' or "
                             f"'masked', got {loss_region!r}.")
        self.decoder = MODELS.build(decoder)
        self.loss_region = loss_region
        self.beta = beta
        self.pairs = pairs

    def forward(self, visual: Sequence[torch.Tensor],
                out_size: Tuple[int, int]) -> torch.Tensor:
        """Reconstruct (B, 3, *out_size) from the four visual maps."""
        recon = self.decoder(visual)
        if tuple(recon.shape[-2:]) != tuple(out_size):
            recon = F.interpolate(
                recon, size=out_size, mode='bilinear', align_corners=False)
        return recon

    def loss(self, feats: VLFeatures,
             batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        target = batch['target_images']
        rows = num_loss_rows(batch, self.pairs, target.shape[0])
        visual = [v[:rows] for v in feats.visual]
        target = target[:rows]
        recon = self(visual, target.shape[-2:])
        error = F.smooth_l1_loss(
            recon.float(), target.float(), reduction='none', beta=self.beta)
        if self.loss_region == 'masked':
            weight = batch['image_mask'][:rows, None].to(error.dtype)
            loss = (error * weight).sum() / (weight.sum() *
                                             error.shape[1]).clamp_min(1.0)
        else:
            loss = error.mean()
        return dict(loss_mir=loss * self.loss_weight)

    def predict(self, feats: VLFeatures,
                batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        images = batch['images']
        return dict(reconstruction=self(feats.visual, images.shape[-2:]))
