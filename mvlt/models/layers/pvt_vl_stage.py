"""One stage of PVT-VL: patch and text embeddings, then the joint blocks."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .embeddings import LinearNorm, PatchEmbed
from .transformer_block import PVTVLBlock


class PVTVLStage(nn.Module):
    """One stage: embed both modalities, concatenate, run the blocks, split.

    Args:
        in_channels (int): Visual width entering the stage.
        text_in_channels (int): Text width entering the stage.
        embed_dim (int): Stage width D_k.
        depth (int): Number of blocks M_k.
        num_heads, mlp_ratio, sr_ratio: Block settings.
        patch_size, stride (int): Patch convolution K_k, S_k.
        num_patches (tuple): (h, w) of the visual grid at the configured image
            size; size of the learned visual position embedding.
        text_len (int): Size of the learned text position embedding.
        drop_path_rates (list[float]): One stochastic-depth rate per block.
        mlp_chunk_size (int, optional): Tokens per checkpointed MLP chunk in
            training (see ``PVTVLBlock``); None: the MLP in one piece.
    """

    def __init__(self,
                 in_channels: int,
                 text_in_channels: int,
                 embed_dim: int,
                 depth: int,
                 num_heads: int,
                 mlp_ratio: float,
                 sr_ratio: int,
                 patch_size: int,
                 stride: int,
                 num_patches: Tuple[int, int],
                 text_len: int,
                 drop_path_rates: Sequence[float],
                 qkv_bias: bool,
                 drop_rate: float,
                 attn_drop_rate: float,
                 attn_impl: str,
                 norm_eps: float,
                 embed_norm_eps: float = 1e-5,
                 recompute_gelu: bool = True,
                 onednn: bool = True,
                 mlp_chunk_size: Optional[int] = None) -> None:
        super().__init__()
        self.num_patches = tuple(num_patches)
        self.patch_embed = PatchEmbed(in_channels, embed_dim, patch_size,
                                      stride, embed_norm_eps)
        self.text_embed = LinearNorm(text_in_channels, embed_dim,
                                     embed_norm_eps)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_patches[0] * num_patches[1], embed_dim))
        self.text_pos_embed = nn.Parameter(torch.zeros(1, text_len, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList([
            PVTVLBlock(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=drop_path_rates[i],
                sr_ratio=sr_ratio,
                attn_impl=attn_impl,
                norm_eps=norm_eps,
                sr_norm_eps=embed_norm_eps,
                recompute_gelu=recompute_gelu,
                onednn=onednn,
                mlp_chunk_size=mlp_chunk_size) for i in range(depth)
        ])
