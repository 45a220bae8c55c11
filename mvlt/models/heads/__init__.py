"""Heads (registry: MODELS); each owns its loss."""
from .base_head import BaseVLHead
from .category_head import CategoryHead
from .itm_head import ITMHead
from .mir_head import MIRHead, UNetDecoder
from .mlm_head import MLMHead

__all__ = [
    'BaseVLHead', 'MIRHead', 'UNetDecoder', 'ITMHead', 'MLMHead',
    'CategoryHead'
]
