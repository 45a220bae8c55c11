"""Heads (registry: MODELS); each owns its loss."""
from .base_head import BaseVLHead
from .category_head import CategoryHead
from .itc_head import ITCHead
from .itm_head import ITMHead
from .mir_head import MIRHead, UNetDecoder
from .mlm_head import MLMHead
from .reference_decoder import ReferencePartialDecoder
from .tgir_head import TGIRHead, bind_gallery_heads
from .zero_shot_head import (ZeroShotCategoryHead, class_embeddings,
                             prompt_captions, zero_shot_probs)

__all__ = [
    'ITCHead', 'BaseVLHead', 'MIRHead', 'UNetDecoder', 'ITMHead', 'MLMHead',
    'CategoryHead', 'ReferencePartialDecoder', 'TGIRHead',
    'bind_gallery_heads', 'ZeroShotCategoryHead', 'class_embeddings',
    'prompt_captions', 'zero_shot_probs'
]
