"""Image loading: from files, and from HDF5 files opened once per process."""
import os
import os.path as osp
from typing import Dict, List, Optional

import h5py
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from mvlt.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Read ``results['img_path']`` into ``results['img']``: RGB uint8 HxWx3.

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
        # Decode in the backend's native order and convert afterwards: mmcv's
        # own RGB conversion runs on a failed decode and hides the cause.
        try:
            img = mmcv.imfrombytes(
                data,
                flag='color',
                channel_order='bgr',
                backend=self.imdecode_backend)
        except Exception as err:  # decoders raise many types
            raise ValueError(
                f'Cannot decode image {path}: {type(err).__name__}: '
                f'{str(err).splitlines()[0][:200]}') from None
        if img is None or img.size == 0:
            raise ValueError(
                f'Cannot decode image {path}: not a readable image '
                f'({len(data)} bytes).')
        results['img'] = np.ascontiguousarray(mmcv.bgr2rgb(img))
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


# h5py handles must not cross a fork: a dataloader worker that finds handles
# opened by another process (its parent) leaves them alone and opens its own.
# The inherited objects are kept referenced so that they are never closed or
# garbage-collected in the child.
_HDF5_FILES: Dict[str, h5py.File] = {}
_HDF5_PID: Optional[int] = None
_INHERITED_HDF5: List[h5py.File] = []


def _own_hdf5_files() -> Dict[str, h5py.File]:
    """The handles this process opened (after a fork, none yet)."""
    global _HDF5_PID
    pid = os.getpid()
    if _HDF5_PID != pid:
        _INHERITED_HDF5.extend(_HDF5_FILES.values())
        _HDF5_FILES.clear()
        _HDF5_PID = pid
    return _HDF5_FILES


def open_hdf5(path: str) -> h5py.File:
    """This process's read-only handle of ``path``, opened on first use.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OSError: ``path`` is not a readable HDF5 file (the message names it).
    """
    files = _own_hdf5_files()
    handle = files.get(path)
    if handle is not None and handle.id.valid:
        return handle
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'HDF5 file {path} does not exist; check data_root / ann_file in '
            'the dataset config.')
    try:
        handle = h5py.File(path, 'r')
    except OSError as err:
        raise OSError(f'Cannot open {path} as an HDF5 file: {err}') from None
    files[path] = handle
    return handle


def close_hdf5(path: Optional[str] = None) -> None:
    """Close this process's cached handle of ``path`` (all when None)."""
    files = _own_hdf5_files()
    for key in [path] if path is not None else list(files):
        handle = files.pop(key, None)
        if handle is not None and handle.id.valid:
            handle.close()


@TRANSFORMS.register_module()
class LoadFashionGenImage(BaseTransform):
    """Read row ``results['h5_row']`` of an image array in an HDF5 file.

    The file (``results['h5_path']``) holds ``key`` as (N, H, W, 3) RGB
    uint8, the Fashion-Gen layout. Only that row is read (one chunk), through
    a handle opened once per process (see :func:`open_hdf5`), so dataloader
    workers never share a handle with the main process.

    Adds ``img`` (H, W, 3) RGB uint8, ``img_shape`` and ``ori_shape``.

    Args:
        key (str): Name of the image data set in the file.
    """

    def __init__(self, key: str = 'input_image') -> None:
        self.key = key

    def transform(self, results: dict) -> dict:
        path, row = results['h5_path'], int(results['h5_row'])
        handle = open_hdf5(path)
        if self.key not in handle:
            raise KeyError(f'{path} has no data set {self.key!r} (row {row});'
                           f' it holds {sorted(handle.keys())}.')
        images = handle[self.key]
        if not 0 <= row < images.shape[0]:
            raise IndexError(f'{path}: row {row} is outside {self.key} with '
                             f'{images.shape[0]} rows.')
        img = images[row]
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(
                f'{path} row {row}: {self.key} gives an image of shape '
                f'{img.shape} and dtype {img.dtype}; expected (H, W, 3) '
                'uint8 RGB.')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(key={self.key!r})'
