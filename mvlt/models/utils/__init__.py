"""Batch-level utilities of the models."""
from .itm_pairs import ITMPairs, sample_itm_pairs
from .reference_mapping import (ReferenceConversion, compare_with_model,
                                convert_reference_state_dict,
                                load_reference_checkpoint)
from .text_masking import MaskedText, bert_mask_tokens, num_mask_slots

__all__ = [
    'ITMPairs', 'sample_itm_pairs', 'MaskedText', 'bert_mask_tokens',
    'num_mask_slots', 'ReferenceConversion', 'convert_reference_state_dict',
    'compare_with_model', 'load_reference_checkpoint'
]
