"""The reference implementation's MIR decoder, for converted checkpoints.

The authors' public code reconstructs the image with a 3-input partial
decoder (``t2i_head`` in their checkpoints) instead of the paper's 4-level
U-Net. It is the "aggregation" decoder of CPD / PraNet applied to V^2..V^4:

* ``reduction1..3``: conv3x3 + BN (no activation) bring V^2, V^3, V^4 to
  ``channels`` (64) channels;
* with ``up(x)`` = bilinear x2 up-sampling (``align_corners=True``) and
  ``*`` the element-wise product::

      x2 = cu1(up(r3)) * r2
      x3 = cu2(up(r2)) * cu3(up(x2)) * r1
      y2 = cc2(cat(x2, cu4(up(r3))))                  # 2 * channels
      y3 = cc3(cat(x3, cu5(up(y2))))                  # 3 * channels
      out = up8(score(conv4(y3)))                     # conv1x1 -> 3 channels

  where ``cu1..cu5`` (``conv_upsample*``), ``cc2``, ``cc3``
  (``conv_concat*``) and ``conv4`` are conv3x3 + BN without activation;
* ``up8`` is bilinear x8 up-sampling (``align_corners=True``): V^2 has
  stride 8, so the output has the input's size.

What was verified: the parameter names and shapes against the listing of a
reference checkpoint (``official_mvlt_tiny_state_dict.tsv``), and the
forward above against the authors' public ``ITGHead`` (GitHub
GewelsJI/MVLT, ``libs/vl_heads.py``: conv-BN blocks without ReLU, products,
``align_corners=True``). Not verified: outputs of a real trained reference
checkpoint (none was available), so BN statistics and numerical agreement
with the authors' runtime are untested beyond that re-statement.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mvlt.registry import MODELS


@MODELS.register_module()
class ReferencePartialDecoder(BaseModule):
    """3-input partial decoder over V^2..V^4 -> full-size image.

    Used as ``MIRHead(decoder=dict(type='ReferencePartialDecoder'))`` to run
    checkpoints converted from the reference implementation (see the module
    docstring for the forward and what was verified).

    Args:
        in_channels (Sequence[int]): Widths of V^1..V^4 (V^1 is not used).
        channels (int): Width after the reductions (64 in the reference).
        out_channels (int): Image channels.
        up_factor (int): Final up-sampling, the stride of V^2 (8).
        norm_cfg (dict): Norm of the conv blocks (BN in the reference).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (64, 128, 320, 512),
                 channels: int = 64,
                 out_channels: int = 3,
                 up_factor: int = 8,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 4:
            raise ValueError('ReferencePartialDecoder needs the widths of '
                             f'V^1..V^4, got in_channels={in_channels}.')

        def conv_bn(in_ch: int, out_ch: int) -> ConvModule:
            # conv3x3 without bias + BN and no activation, as in the
            # reference (its keys are `<name>.0.weight`, `<name>.1.*`).
            return ConvModule(
                in_ch,
                out_ch,
                3,
                padding=1,
                bias=False,
                norm_cfg=norm_cfg,
                act_cfg=None)

        self.reduction1 = conv_bn(in_channels[1], channels)
        self.reduction2 = conv_bn(in_channels[2], channels)
        self.reduction3 = conv_bn(in_channels[3], channels)
        self.conv_upsample1 = conv_bn(channels, channels)
        self.conv_upsample2 = conv_bn(channels, channels)
        self.conv_upsample3 = conv_bn(channels, channels)
        self.conv_upsample4 = conv_bn(channels, channels)
        self.conv_upsample5 = conv_bn(2 * channels, 2 * channels)
        self.conv_concat2 = conv_bn(2 * channels, 2 * channels)
        self.conv_concat3 = conv_bn(3 * channels, 3 * channels)
        self.conv4 = conv_bn(3 * channels, 3 * channels)
        self.score = nn.Conv2d(3 * channels, out_channels, 1)
        self.up_factor = up_factor

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Bilinear up-sampling to ``like``'s size (x2 on the pyramid)."""
        return F.interpolate(
            x, size=like.shape[-2:], mode='bilinear', align_corners=True)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """feats: V^1..V^4 (or V^2..V^4) -> (B, out_channels, R_2 * h2,
        R_2 * w2)."""
        low, mid, high = feats[-3:]
        r1 = self.reduction1(low)
        r2 = self.reduction2(mid)
        r3 = self.reduction3(high)
        x2 = self.conv_upsample1(self._up(r3, r2)) * r2
        x3 = self.conv_upsample2(self._up(r2, r1)) * \
            self.conv_upsample3(self._up(x2, r1)) * r1
        y2 = self.conv_concat2(
            torch.cat([x2, self.conv_upsample4(self._up(r3, r2))], dim=1))
        y3 = self.conv_concat3(
            torch.cat([x3, self.conv_upsample5(self._up(y2, r1))], dim=1))
        out = self.score(self.conv4(y3))
        return F.interpolate(
            out,
            scale_factor=self.up_factor,
            mode='bilinear',
            align_corners=True)
