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

    ``inputs`` is a dict with ``images`` (3, H, W) uint8 (from ``img``, RGB;
    a channel-first view of the loaded array, not a copy; or the encoded
    file as a 1-D uint8 tensor from ``img_bytes``), and the caption:
    ``input_ids`` and ``attention_mask`` (L,) int64 when the pipeline
    tokenised it, else ``captions`` (the text, which the model's data
    preprocessor tokenises). ``data_samples`` is a ``BaseDataElement`` with
    the integer labels ``product_index``, ``category_label``,
    ``subcategory_label`` as data fields and ``meta_keys`` as meta
    information.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` kept as meta.
        allow_empty_caption (bool): Accept an empty or whitespace-only
            caption; by default it is an error naming the sample (with
            ``on_bad_sample='skip'`` such samples are skipped and counted).
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('sample_idx', 'img_path',
                                             'caption', 'product_id',
                                             'ori_shape', 'img_shape'),
                 allow_empty_caption: bool = False) -> None:
        self.meta_keys = tuple(meta_keys)
        self.allow_empty_caption = allow_empty_caption

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
            inputs['images'] = torch.from_numpy(img).permute(2, 0, 1)
        elif 'img_bytes' in results:
            # Encoded: the data preprocessor decodes the batch on its device.
            inputs['images'] = torch.from_numpy(results['img_bytes'])
        if 'input_ids' in results:
            for key in ('input_ids', 'attention_mask'):
                inputs[key] = torch.as_tensor(results[key], dtype=torch.long)
        elif 'caption' in results:
            inputs['captions'] = self._checked_caption(results)
        sample = BaseDataElement(
            metainfo={k: results[k]
                      for k in self.meta_keys if k in results})
        for key in LABEL_KEYS:
            if key in results:
                sample.set_field(int(results[key]), key)
        return dict(inputs=inputs, data_samples=sample)

    def _checked_caption(self, results: dict) -> str:
        caption = results['caption']
        where = results.get('img_path') or results.get('h5_path', '')
        where = f'sample {results.get("sample_idx", "?")}' + (f' ({where})'
                                                              if where else '')
        if not isinstance(caption, str):
            raise TypeError(f'Caption of {where} is {type(caption).__name__}'
                            ', expected str.')
        if not caption.strip() and not self.allow_empty_caption:
            raise ValueError(
                f'Caption of {where} is empty ({caption!r}); fix the '
                "annotation, set on_bad_sample='skip' to skip such samples, "
                'or PackMVLTInputs(allow_empty_caption=True).')
        return caption

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(meta_keys={self.meta_keys}, '
                f'allow_empty_caption={self.allow_empty_caption})')
