"""Necks that turn text features of the last stage into head inputs."""
import torch
from mmengine.model import BaseModule

from mvlt.registry import MODELS
from ..layers import LinearNorm


@MODELS.register_module()
class TokenProjector(BaseModule):
    """Project token features to a head width: ``LayerNorm(Linear(x))``.

    Input (..., in_channels) -> (..., out_channels); used by the MLM head on
    the masked positions of T^4 (reference name: ``mlm_head_embed``).

    Args:
        in_channels (int): Width of T^4 (512 for the tiny preset).
        out_channels (int): Head width (768, BERT-base).
        norm_eps (float): LayerNorm epsilon.
    """

    def __init__(self,
                 in_channels: int = 512,
                 out_channels: int = 768,
                 norm_eps: float = 1e-5,
                 init_cfg: dict = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.layer = LinearNorm(in_channels, out_channels, norm_eps)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layer(tokens)


@MODELS.register_module()
class CLSPooler(TokenProjector):
    """Pool the [CLS] token of T^4 and project it: (B, L, C) -> (B, out).

    Args:
        index (int): Position of the pooled token (0 = [CLS]).
    """

    def __init__(self,
                 in_channels: int = 512,
                 out_channels: int = 768,
                 norm_eps: float = 1e-5,
                 index: int = 0,
                 init_cfg: dict = None) -> None:
        super().__init__(in_channels, out_channels, norm_eps, init_cfg)
        self.index = index

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layer(tokens[:, self.index])
