"""Pre-norm transformer block of PVT-VL."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from timm.layers import DropPath, Mlp

from .attention import SpatialReductionAttention
from .gelu_linear import gelu_linear
from .onednn_linear import fused_linear


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
        norm_eps (float): LayerNorm epsilon of norm1 / norm2.
        sr_norm_eps (float): LayerNorm epsilon of the spatial reduction.
        recompute_gelu (bool): In training, keep only the MLP's hidden
            pre-activation for backward and recompute the GELU (one
            (B, T, mlp_ratio * dim) tensor less per block, same numbers;
            :func:`gelu_linear`). Acts only without MLP dropout.
        onednn (bool): Run the projections and the MLP (GELU fused) through
            oneDNN's fused linear kernel in CPU float32 inference.
        mlp_chunk_size (int, optional): In training, apply the MLP to chunks
            of this many tokens, each checkpointed: its (B, chunk,
            mlp_ratio * dim) hidden activations are recomputed in backward
            one chunk at a time instead of being kept for all tokens (as
            the feed-forward chunking of Reformer / transformers'
            ``chunk_size_feed_forward``, with checkpointing so that it also
            saves memory in backward). PVTVL sets it in the blocks of
            checkpointed stages (``with_cp``), where the recomputed MLP of
            the first stage is otherwise the largest tensor of the step.
            Off (None) by default, and inactive while MLP dropout acts (its
            masks would be drawn per chunk, unlike the unchunked block's).
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
                 norm_eps: float = 1e-6,
                 sr_norm_eps: float = 1e-5,
                 recompute_gelu: bool = True,
                 onednn: bool = True,
                 mlp_chunk_size: Optional[int] = None) -> None:
        super().__init__()
        if mlp_chunk_size is not None and mlp_chunk_size < 1:
            raise ValueError(
                'PVTVLBlock: mlp_chunk_size must be a positive number of '
                f'tokens or None, got {mlp_chunk_size}.')
        self.mlp_chunk_size = mlp_chunk_size
        self.recompute_gelu = recompute_gelu
        self.onednn = onednn
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = SpatialReductionAttention(
            dim,
            num_heads,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
            proj_drop=drop,
            sr_ratio=sr_ratio,
            attn_impl=attn_impl,
            norm_eps=sr_norm_eps,
            onednn=onednn)
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
                text_mask: Optional[torch.Tensor] = None,
                num_queries: Optional[int] = None) -> torch.Tensor:
        """x: (B, L + N, D) -> (B, L + N, D); see SpatialReductionAttention.

        With ``num_queries`` only the first ``num_queries`` tokens are
        updated and returned: (B, num_queries, D).
        """
        attended = self.attn(
            self.norm1(x), num_text, hw, text_mask, num_queries)
        if num_queries is not None:
            x = x[:, :num_queries]
        x = x + self.drop_path(attended)
        return x + self.drop_path(self._chunked_mlp(self.norm2(x)))

    def _chunked_mlp(self, x: torch.Tensor) -> torch.Tensor:
        size = self.mlp_chunk_size
        mlp = self.mlp
        if size is None or x.shape[1] <= size or not (
                self.training and torch.is_grad_enabled()) or (
                    mlp.drop1.p > 0 or mlp.drop2.p > 0):
            return self._mlp(x)
        return torch.cat([
            cp.checkpoint(self._mlp, part, use_reentrant=False)
            for part in x.split(size, dim=1)
        ], dim=1)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        mlp = self.mlp
        # timm's Mlp is fc1 -> GELU -> drop1 -> norm -> fc2 -> drop2; the
        # fast paths cover it when the norm is off and no dropout acts.
        if not (self.recompute_gelu or self.onednn) or not (
                isinstance(mlp.act, nn.GELU) and mlp.act.approximate == 'none'
                and isinstance(mlp.norm, nn.Identity)) or (
                    self.training and (mlp.drop1.p > 0 or mlp.drop2.p > 0)):
            return mlp(x)
        if self.recompute_gelu and self.training and torch.is_grad_enabled():
            return gelu_linear(
                fused_linear(x, mlp.fc1, onednn=self.onednn), mlp.fc2.weight,
                mlp.fc2.bias, self.onednn)
        hidden = fused_linear(x, mlp.fc1, 'gelu', onednn=self.onednn)
        return fused_linear(hidden, mlp.fc2, onednn=self.onednn)
