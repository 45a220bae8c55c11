"""Building blocks shared by mvlt models."""
from .attention import SpatialReductionAttention, eager_attention
from .embeddings import LinearNorm, PatchEmbed, build_bert_embeddings
from .gelu_linear import gelu_linear
from .onednn_linear import fused_linear, onednn_available
from .pvt_vl_stage import PVTVLStage
from .transformer_block import PVTVLBlock

__all__ = [
    'SpatialReductionAttention', 'eager_attention', 'LinearNorm', 'PatchEmbed',
    'build_bert_embeddings', 'PVTVLBlock', 'PVTVLStage', 'gelu_linear',
    'fused_linear', 'onednn_available'
]
