"""Data sets and transforms of mvlt (registries: DATASETS, TRANSFORMS)."""
from .base import MVLTBaseDataset
from .coco_retrieval import COCORetrievalDataset
from .fashiongen import FashionGenDataset
from .fashioniq import FashionIQDataset, join_captions
from .image_text import ImageTextDataset
from .label_map import IGNORE_LABEL, LabelMap
from .samplers import GroupedSampler, ResumableSampler
from .shards import ShardDataset, expand_shard_urls
from .transforms import *  # noqa: F401,F403

__all__ = [
    'MVLTBaseDataset', 'ImageTextDataset', 'FashionGenDataset',
    'COCORetrievalDataset', 'FashionIQDataset', 'join_captions', 'LabelMap',
    'IGNORE_LABEL', 'ResumableSampler', 'GroupedSampler', 'ShardDataset',
    'expand_shard_urls'
]
