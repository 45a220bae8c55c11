"""Batch-level utilities of the models."""
from .itm_pairs import ITMPairs, sample_itm_pairs
from .text_masking import MaskedText, bert_mask_tokens, num_mask_slots

__all__ = [
    'ITMPairs', 'sample_itm_pairs', 'MaskedText', 'bert_mask_tokens',
    'num_mask_slots'
]
