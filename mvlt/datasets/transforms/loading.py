"""Image loading: from files, and from HDF5 files opened once per process."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from mvlt.image import MAX_ASPECT, MAX_PIXELS, decode_image
from mvlt.registry import TRANSFORMS
# The HDF5 handles and row reader live in the torch-free mvlt.utils.hdf5
# (the catalogue search reads gallery rows with them without torch).
from mvlt.utils.hdf5 import (close_hdf5, open_hdf5,  # noqa: F401
                             open_hdf5_file, read_image_rows)


@TRANSFORMS.register_module()
class LoadImage(BaseTransform):
    """Read ``results['img_path']`` into ``results['img']``: RGB uint8 HxWx3.

    Unlike mmcv's ``LoadImageFromFile`` it always gives 8-bit RGB (the order
    of the HDF5 data sets and of the normalisation constants), decoded by
    the project's one decoder, :func:`mvlt.image.decode_image`: EXIF
    orientation for every format, transparency onto white, palette / grey /
    CMYK / 16-bit converted, the first frame of an animation, size limits
    checked from the header; errors name the file (and follow the data
    set's ``on_bad_sample``).

    When the data set has read the encoded file already (``img_bytes``, e.g.
    :class:`~mvlt.datasets.ShardDataset`), those bytes are decoded and
    ``img_path`` only names the image in messages.

    ``imdecode_backend='device'`` hands the file's bytes to the model's data
    preprocessor instead, which decodes the whole batch on its device
    (nvJPEG for plain JPEGs on a GPU, the same decoder on the host
    otherwise), so the loader workers only read files. The names
    ``'torchvision'``, ``'cv2'`` and ``'pillow'`` (the former host
    decoders) are kept and mean the one decoder.

    Args:
        backend_args (dict, optional): MMEngine file backend arguments.
        imdecode_backend (str): ``'host'`` (default; same as
            ``'torchvision'``, ``'cv2'``, ``'pillow'``) or ``'device'``.
        min_size (int, optional): Large JPEGs may decode at 1/2, 1/4 or 1/8
            scale (libjpeg's DCT scaling) while both sides stay at least
            ``min_size`` px; set it to the model's input side (or more) to
            load large photos faster. None: full size.
        max_pixels (int): Most pixels an image may have (header check).
        max_aspect (float): Largest aspect ratio (header check).
    """

    DECODERS = ('host', 'torchvision', 'cv2', 'pillow', 'device')

    def __init__(self,
                 backend_args: Optional[dict] = None,
                 imdecode_backend: str = 'host',
                 min_size: Optional[int] = None,
                 max_pixels: int = MAX_PIXELS,
                 max_aspect: float = MAX_ASPECT) -> None:
        if imdecode_backend not in self.DECODERS:
            raise ValueError(f'LoadImage: imdecode_backend must be one of '
                             f'{self.DECODERS}, got {imdecode_backend!r}.')
        self.backend_args = backend_args
        self.imdecode_backend = imdecode_backend
        self.decode_options = dict(
            min_size=min_size, max_pixels=max_pixels, max_aspect=max_aspect)

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        if 'img_bytes' in results:
            # Already read by the data set (a member of a tar shard).
            data = results.pop('img_bytes')
            data = data.tobytes() if isinstance(data, np.ndarray) else data
        else:
            try:
                data = get(path, backend_args=self.backend_args)
            except FileNotFoundError:
                raise FileNotFoundError(
                    f'Image file {path} does not exist; check data_root / '
                    'data_prefix in the dataset config.') from None
        if self.imdecode_backend == 'device':
            results['img_bytes'] = np.frombuffer(data, np.uint8)
            return results
        img = decode_image(data, name=f'image {path}', **self.decode_options)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadFashionGenImage(BaseTransform):
    """Read row ``results['h5_row']`` of an image array in an HDF5 file.

    The file (``results['h5_path']``) holds ``key`` as (N, H, W, 3) RGB
    uint8, the Fashion-Gen layout. Only that row is read (one chunk,
    :func:`read_image_rows`), through a handle opened once per process (see
    :func:`open_hdf5`), so dataloader workers never share a handle with the
    main process. A data set that read the rows of a whole batch at once
    passes the row in as ``results['h5_prefetched'] = (key, image)``.

    Adds ``img`` (H, W, 3) RGB uint8, ``img_shape`` and ``ori_shape``.

    Args:
        key (str): Name of the image data set in the file.
    """

    def __init__(self, key: str = 'input_image') -> None:
        self.key = key

    def transform(self, results: dict) -> dict:
        path, row = results['h5_path'], int(results['h5_row'])
        prefetched = results.pop('h5_prefetched', None)
        if prefetched is not None and prefetched[0] == self.key:
            img = prefetched[1]
        else:
            img = read_image_rows(path, self.key, [row])[row]
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
