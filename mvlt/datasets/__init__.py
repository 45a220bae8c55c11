"""Data sets and transforms of mvlt (registries: DATASETS, TRANSFORMS)."""
from .image_text import ImageTextDataset
from .label_map import IGNORE_LABEL, LabelMap
from .transforms import *  # noqa: F401,F403

__all__ = ['ImageTextDataset', 'LabelMap', 'IGNORE_LABEL']
