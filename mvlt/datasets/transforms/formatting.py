"""Packing of a sample into model inputs and a data sample."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mvlt.registry import TRANSFORMS

#: Data fields copied into the data sample when present (ints).
LABEL_KEYS = ('product_index', 'category_label', 'subcategory_label')


@TRANSFORMS.register_module()
class PackMVLTInputs(BaseTransform):
    """Pack a sample as ``dict(inputs=..., data_samples=...)``.

    ``inputs`` is a dict with ``images`` (3, H, W) uint8 (from ``img``, RGB),
    ``input_ids`` and ``attention_mask`` (L,) int64, each when present.
    ``data_samples`` is a ``BaseDataElement`` with the integer labels
    ``product_index``, ``category_label``, ``subcategory_label`` as data
    fields and ``meta_keys`` as meta information.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` kept as meta.
    """

    def __init__(
        self,
        meta_keys: Sequence[str] = ('sample_idx', 'img_path', 'caption',
                                    'product_id', 'ori_shape', 'img_shape')
    ) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        inputs = {}
        if 'img' in results:
            img = results['img']
            if img.ndim == 2:
                img = img[..., None].repeat(3, axis=2)
            if img.dtype != np.uint8:
                raise TypeError(
                    f'Image of sample {results.get("sample_idx")} '
                    f'({results.get("img_path", "in memory")}) is '
                    f'{img.dtype}; the pipeline must keep uint8 pixels.')
            inputs['images'] = torch.from_numpy(
                np.ascontiguousarray(img.transpose(2, 0, 1)))
        for key in ('input_ids', 'attention_mask'):
            if key in results:
                inputs[key] = torch.as_tensor(results[key], dtype=torch.long)
        sample = BaseDataElement(
            metainfo={k: results[k]
                      for k in self.meta_keys if k in results})
        for key in LABEL_KEYS:
            if key in results:
                sample.set_field(int(results[key]), key)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
