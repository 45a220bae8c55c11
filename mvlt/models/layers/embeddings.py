"""Token and patch embeddings of PVT-VL."""
from typing import Tuple

import torch
import torch.nn as nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEmbeddings


def build_bert_embeddings(vocab_size: int,
                          hidden_size: int = 768,
                          max_position_embeddings: int = 512,
                          type_vocab_size: int = 2,
                          pad_token_id: int = 0,
                          dropout: float = 0.1,
                          norm_eps: float = 1e-12) -> nn.Module:
    """BERT-base word + position + token-type embedding, LayerNorm, dropout.

    Uses ``transformers``' own ``BertEmbeddings`` so that parameter names
    (``word_embeddings``, ``position_embeddings``, ``token_type_embeddings``,
    ``LayerNorm``) and behaviour match BERT checkpoints.
    """
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        max_position_embeddings=max_position_embeddings,
        type_vocab_size=type_vocab_size,
        pad_token_id=pad_token_id,
        hidden_dropout_prob=dropout,
        layer_norm_eps=norm_eps)
    return BertEmbeddings(config)


class LinearNorm(nn.Module):
    """``LayerNorm(Linear(x))``: the projection used between text widths and
    by the [CLS] poolers. Works on any leading shape (..., in) -> (..., out).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, out_channels)
        self.norm = nn.LayerNorm(out_channels, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class PatchEmbed(nn.Module):
    """Strided convolution + LayerNorm: (B, C, H, W) -> (B, h*w, D), (h, w).

    Parameter names (``proj``, ``norm``) follow PVT.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dim: int,
                 patch_size: int,
                 stride: int,
                 norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            in_channels, embed_dim, kernel_size=patch_size, stride=stride)
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, tuple]:
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw
