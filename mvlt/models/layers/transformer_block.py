"""Pre-norm transformer block of PVT-VL."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from timm.layers import DropPath, Mlp

from .attention import SpatialReductionAttention


class PVTVLBlock(nn.Module):
    """``x + DropPath(SRA(LN(x)))`` then ``x + DropPath(MLP(LN(x)))``.

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden width of the MLP relative to ``dim``.
        qkv_bias (bool): Bias in q / kv projections.
        drop (float): Dropout after attention projection and in the MLP.
        attn_drop (float): Dropout on attention weights.
        drop_path (float): Stochastic-depth rate of this block.
        sr_ratio (int): Spatial-reduction ratio of the visual keys.
        attn_impl (str): ``'sdpa'`` or ``'eager'``.
        norm_eps (float): LayerNorm epsilon.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 drop: float = 0.0,
                 attn_drop: float = 0.0,
                 drop_path: float = 0.0,
                 sr_ratio: int = 1,
                 attn_impl: str = 'sdpa',
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = SpatialReductionAttention(
            dim,
            num_heads,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
            proj_drop=drop,
            sr_ratio=sr_ratio,
            attn_impl=attn_impl,
            norm_eps=norm_eps)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(
            in_features=dim,
            hidden_features=int(dim * mlp_ratio),
            act_layer=nn.GELU,
            drop=drop)

    def forward(self,
                x: torch.Tensor,
                num_text: int,
                hw: Tuple[int, int],
                text_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, L + N, D) -> (B, L + N, D); see SpatialReductionAttention."""
        x = x + self.drop_path(
            self.attn(self.norm1(x), num_text, hw, text_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))
