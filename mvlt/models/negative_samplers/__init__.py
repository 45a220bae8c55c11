"""Negative samplers of image-text matching (NEGATIVE_SAMPLERS)."""
from .base import BaseNegativeSampler, NegativeCandidates, uniform_choice
from .itc_hard import ITCHardNegatives
from .random_negatives import RandomNegatives
from .same_group import SameGroupNegatives

__all__ = [
    'BaseNegativeSampler', 'NegativeCandidates', 'uniform_choice',
    'RandomNegatives', 'SameGroupNegatives', 'ITCHardNegatives'
]
