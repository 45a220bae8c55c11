"""Joint vision-language attention, visual keys spatially reduced."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .onednn_linear import fused_linear

ATTN_IMPLS = ('sdpa', 'eager')


def eager_attention(query: torch.Tensor,
                    key: torch.Tensor,
                    value: torch.Tensor,
                    attn_mask: Optional[torch.Tensor] = None,
                    dropout_p: float = 0.0,
                    training: bool = False) -> torch.Tensor:
    """Plain ``softmax(Q K^T / sqrt(d)) V``, the reference for SDPA.

    Args:
        query (Tensor): (B, heads, Tq, d).
        key, value (Tensor): (B, heads, Tk, d).
        attn_mask (Tensor, optional): bool, broadcastable to (B, heads, Tq,
            Tk); True where a key may be attended.
    """
    scores = query @ key.transpose(-2, -1) * query.shape[-1]**-0.5
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float('-inf'))
    weights = scores.softmax(dim=-1)
    if dropout_p > 0 and training:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value


class SpatialReductionAttention(nn.Module):
    """Multi-head self-attention over ``[text tokens; visual tokens]``.

    Queries are all tokens. Keys and values are the text tokens as they are
    and the visual tokens down-sampled by a strided convolution of ratio
    ``sr_ratio`` followed by LayerNorm (PVT's "SRA"), so attention costs
    O((L + N) * (L + N / sr^2)) instead of O((L + N)^2).

    Parameter names (``q``, ``kv``, ``proj``, ``sr``, ``norm``) follow PVT so
    that ImageNet PVT weights load without renaming.

    Args:
        dim (int): Token width D.
        num_heads (int): Attention heads; must divide ``dim``.
        qkv_bias (bool): Bias in the q and kv projections.
        attn_drop (float): Dropout on attention weights.
        proj_drop (float): Dropout after the output projection.
        sr_ratio (int): Spatial-reduction ratio of the visual keys/values.
        attn_impl (str): ``'sdpa'`` (``F.scaled_dot_product_attention``) or
            ``'eager'`` (explicit softmax); decided once per layer, as timm's
            ``fused_attn``.
        norm_eps (float): LayerNorm epsilon of the reduction norm.
        onednn (bool): Run the projections through oneDNN's fused linear
            kernel in CPU float32 inference
            (:func:`~mvlt.models.layers.fused_linear`); False keeps
            ``nn.Linear`` everywhere.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.0,
                 proj_drop: float = 0.0,
                 sr_ratio: int = 1,
                 attn_impl: str = 'sdpa',
                 norm_eps: float = 1e-5,
                 onednn: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'dim {dim} is not divisible by num_heads '
                             f'{num_heads}.')
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f'attn_impl must be one of {ATTN_IMPLS}, got '
                             f'{attn_impl!r}.')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_impl = attn_impl
        self.onednn = onednn
        self.attn_drop = attn_drop
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(
                dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim, eps=norm_eps)

    def forward(self,
                x: torch.Tensor,
                num_text: int,
                hw: Tuple[int, int],
                text_mask: Optional[torch.Tensor] = None,
                num_queries: Optional[int] = None) -> torch.Tensor:
        """Attend.

        Args:
            x (Tensor): (B, L + N, D): ``num_text`` text tokens, then N = h*w
                visual tokens in row-major order.
            num_text (int): L, the number of text tokens (may be 0).
            hw (tuple): (h, w) of the visual grid (h*w may be 0).
            text_mask (Tensor, optional): bool (B, L), True for real tokens;
                False keys ([PAD]) get no attention.
            num_queries (int, optional): Compute the outputs of the first
                ``num_queries`` tokens only (keys and values still come from
                every token); e.g. 1 for the [CLS] token of the last block
                when only image-text matching is predicted.

        Returns:
            Tensor: (B, num_queries or L + N, D).
        """
        batch, num_tokens, dim = x.shape
        heads, head_dim = self.num_heads, self.head_dim
        num_queries = num_tokens if num_queries is None else num_queries
        query_input = x if num_queries == num_tokens else x[:, :num_queries]
        query = fused_linear(
            query_input, self.q,
            onednn=self.onednn).reshape(batch, num_queries, heads,
                                        head_dim).transpose(1, 2)
        num_visual = num_tokens - num_text
        if self.sr_ratio > 1 and num_visual > 0:
            # One split instead of two slices: its backward writes the
            # gradient once instead of zero-filling x twice.
            text, visual = x.split([num_text, num_visual], dim=1)
            visual = visual.transpose(1, 2).reshape(batch, dim, hw[0], hw[1])
            visual = self.norm(self.sr(visual).flatten(2).transpose(1, 2))
            kv_input = torch.cat([text, visual], dim=1) if num_text else \
                visual
        else:
            kv_input = x
        num_keys = kv_input.shape[1]
        key, value = fused_linear(
            kv_input, self.kv,
            onednn=self.onednn).reshape(batch, num_keys, 2, heads,
                                        head_dim).permute(2, 0, 3, 1,
                                                          4).unbind(0)
        attn_mask = None
        if text_mask is not None and num_text > 0:
            visual_valid = text_mask.new_ones(batch, num_keys - num_text)
            attn_mask = torch.cat([text_mask, visual_valid], dim=1)[:, None,
                                                                    None, :]
        dropout_p = self.attn_drop if self.training else 0.0
        if self.attn_impl == 'sdpa':
            out = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attn_mask, dropout_p=dropout_p)
        else:
            out = eager_attention(query, key, value, attn_mask, dropout_p,
                                  self.training)
        out = out.transpose(1, 2).reshape(batch, num_queries, dim)
        return self.proj_drop(fused_linear(out, self.proj, onednn=self.onednn))
