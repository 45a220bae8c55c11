"""Data sets and transforms of mvlt (registries: DATASETS, TRANSFORMS)."""
from .base import MVLTBaseDataset
from .image_text import ImageTextDataset
from .label_map import IGNORE_LABEL, LabelMap
from .transforms import *  # noqa: F401,F403

__all__ = ['MVLTBaseDataset', 'ImageTextDataset', 'LabelMap', 'IGNORE_LABEL']
