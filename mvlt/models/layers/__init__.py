"""Building blocks shared by mvlt models."""
from .attention import SpatialReductionAttention, eager_attention
from .embeddings import LinearNorm, PatchEmbed, build_bert_embeddings
from .transformer_block import PVTVLBlock

__all__ = [
    'SpatialReductionAttention', 'eager_attention', 'LinearNorm',
    'PatchEmbed', 'build_bert_embeddings', 'PVTVLBlock'
]
