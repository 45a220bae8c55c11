"""Mask generators of masked image reconstruction (MASK_GENERATORS)."""
from .base import BaseMaskGenerator
from .center import CenterMask
from .grid import GridMask
from .random_grid import RandomGridMask
from .stroke import StrokeMask

__all__ = [
    'BaseMaskGenerator', 'RandomGridMask', 'GridMask', 'StrokeMask',
    'CenterMask'
]
