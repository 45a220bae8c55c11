"""Image loading."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from mvlt.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Read ``results['img_path']`` into ``results['img']`` (H, W, 3) RGB uint8.

    Unlike mmcv's ``LoadImageFromFile`` it always gives RGB (the order of the
    HDF5 data sets and of the normalisation constants) and names the file in
    its errors.

    Args:
        backend_args (dict, optional): MMEngine file backend arguments.
        imdecode_backend (str): ``'cv2'`` or ``'pillow'``.
    """

    def __init__(self,
                 backend_args: Optional[dict] = None,
                 imdecode_backend: str = 'cv2') -> None:
        self.backend_args = backend_args
        self.imdecode_backend = imdecode_backend

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        try:
            data = get(path, backend_args=self.backend_args)
        except FileNotFoundError:
            raise FileNotFoundError(
                f'Image file {path} does not exist; check data_root / '
                'data_prefix in the dataset config.') from None
        try:
            img = mmcv.imfrombytes(
                data,
                flag='color',
                channel_order='rgb',
                backend=self.imdecode_backend)
        except Exception as err:  # decoders raise many types
            raise ValueError(f'Cannot decode image {path}: {err}') from None
        if img is None or img.size == 0:
            raise ValueError(
                f'Cannot decode image {path}: not a readable image '
                f'({len(data)} bytes).')
        results['img'] = np.ascontiguousarray(img)
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
