"""Transforms of text-guided image retrieval (TGIR) samples: a reference
image, a modification text and a target image."""
from typing import Optional

import torch

from mvlt.registry import TRANSFORMS
from .formatting import PackMVLTInputs
from .loading import LoadImage


@TRANSFORMS.register_module()
class LoadTargetImage(LoadImage):
    """Read ``results['target_img_path']`` into ``results['target_img']``
    (RGB uint8 HxWx3) with :class:`LoadImage`'s decoder and errors; a
    sample without a target (FashionIQ's test split) passes unchanged.

    Args:
        backend_args, imdecode_backend: As :class:`LoadImage` (the
            ``'device'`` decoder is not supported for targets).
    """

    def __init__(self,
                 backend_args: Optional[dict] = None,
                 imdecode_backend: str = 'host') -> None:
        if imdecode_backend == 'device':
            raise ValueError("LoadTargetImage: imdecode_backend='device' is "
                             'not supported; decode targets in the loader.')
        super().__init__(backend_args, imdecode_backend)

    def transform(self, results: dict) -> dict:
        path = results.get('target_img_path')
        if path is None:
            return results
        loaded = super().transform(dict(img_path=path))
        results['target_img'] = loaded['img']
        return results


@TRANSFORMS.register_module()
class PackTGIRInputs(PackMVLTInputs):
    """:class:`PackMVLTInputs` (reference image as ``images``, modification
    text as ``captions``) plus the target image as ``inputs[
    'gallery_images']`` (3, H, W) uint8, which the data preprocessor
    prepares like ``images``."""

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'target_img' in results:
            packed['inputs']['gallery_images'] = torch.from_numpy(
                results['target_img']).permute(2, 0, 1)
        return packed
