"""Data transforms (registry: TRANSFORMS).

mmcv's generic transforms are registered here too, so that configs in the
``mvlt`` scope can name them (``Resize``, ``RandomFlip``, ...).
"""
from mmcv.transforms import (CenterCrop, Normalize, Pad, RandomChoiceResize,
                             RandomFlip, RandomGrayscale, RandomResize, Resize)

from mvlt.registry import TRANSFORMS
from .formatting import PackMVLTInputs
from .loading import LoadFashionGenImage, LoadImage
from .tgir import LoadTargetImage, PackTGIRInputs
from .tokenize import Tokenize

for _transform in (CenterCrop, Normalize, Pad, RandomChoiceResize, RandomFlip,
                   RandomGrayscale, RandomResize, Resize):
    TRANSFORMS.register_module(module=_transform, force=True)

__all__ = [
    'LoadImage', 'LoadFashionGenImage', 'Tokenize', 'PackMVLTInputs',
    'LoadTargetImage', 'PackTGIRInputs'
]
