"""Image loading: from files, and from HDF5 files opened once per process."""
import os
import os.path as osp
import zlib
from typing import Callable, Dict, List, Optional, Sequence

import h5py
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from mvlt.image import MAX_ASPECT, MAX_PIXELS, decode_image
from mvlt.registry import TRANSFORMS


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


def open_hdf5_file(
        path: str,
        what: str = 'HDF5 file',
        hint: str = 'check data_root / ann_file in the dataset config.'
) -> h5py.File:
    """A new read-only handle of ``path`` (the caller closes it).

    Args:
        path (str): The file.
        what (str): What the file is, for the messages.
        hint (str): What to do when it does not exist.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OSError: ``path`` is not a readable HDF5 file (the message names it).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path} does not exist; {hint}')
    try:
        return h5py.File(path, 'r')
    except OSError as err:
        raise OSError(f'Cannot open {path} as an HDF5 file: {err}') from None


def open_hdf5(path: str) -> h5py.File:
    """This process's read-only handle of ``path``, opened on first use
    (:func:`open_hdf5_file`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OSError: ``path`` is not a readable HDF5 file (the message names it).
    """
    files = _own_hdf5_files()
    handle = files.get(path)
    if handle is not None and handle.id.valid:
        return handle
    handle = open_hdf5_file(path)
    files[path] = handle
    return handle


def close_hdf5(path: Optional[str] = None) -> None:
    """Close this process's cached handle of ``path`` (all when None)."""
    files = _own_hdf5_files()
    for key in [path] if path is not None else list(files):
        handle = files.pop(key, None)
        if handle is not None and handle.id.valid:
            handle.close()


def _inflate_function() -> Callable[[bytes], bytes]:
    """``isal_zlib.decompress`` (ISA-L: about 2x zlib's speed on image rows,
    measured here; optional requirement), else ``zlib.decompress``: the
    same bytes either way."""
    try:
        from isal import isal_zlib
        return isal_zlib.decompress
    except ImportError:
        return zlib.decompress


_INFLATE = _inflate_function()


def _row_chunks_deflated(data: h5py.Dataset) -> bool:
    """Whether each row is one chunk compressed by deflate alone (the layout
    the synthetic Fashion-Gen writes), so a row can be read as raw chunk
    bytes and inflated without HDF5's selection machinery."""
    if data.chunks != (1, ) + tuple(data.shape[1:]) or \
            data.dtype != np.uint8:
        return False
    plist = data.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    return filters == [h5py.h5z.FILTER_DEFLATE]


def read_image_rows(path: str, key: str,
                    rows: Sequence[int]) -> Dict[int, np.ndarray]:
    """Read rows of an (N, H, W, C) uint8 HDF5 data set, as fast as its
    layout allows.

    One deflated chunk per row: the raw chunks are read and inflated here
    (``isal`` when installed), which skips HDF5's per-call selection cost
    (~60 % less time per row measured on the synthetic Fashion-Gen). Other
    layouts: each run of consecutive rows is one slice read (a sequential
    sampler, as in evaluation, reads whole blocks at once).

    Args:
        path (str): The HDF5 file (opened once per process, see
            :func:`open_hdf5`).
        key (str): The image data set.
        rows (Sequence[int]): Rows to read (any order, repeats allowed).

    Returns:
        dict: row -> (H, W, C) uint8 array.

    Raises:
        KeyError / IndexError: No such data set or row (the message names
            the file).
    """
    handle = open_hdf5(path)
    wanted = sorted({int(r) for r in rows})
    if key not in handle:
        raise KeyError(f'{path} has no data set {key!r} (row '
                       f'{wanted[0] if wanted else "-"}); it holds '
                       f'{sorted(handle.keys())}.')
    data = handle[key]
    outside = [r for r in wanted if not 0 <= r < data.shape[0]]
    if outside:
        raise IndexError(f'{path}: row {outside[0]} is outside {key} with '
                         f'{data.shape[0]} rows.')
    out: Dict[int, np.ndarray] = {}
    if _row_chunks_deflated(data):
        shape, size = data.shape[1:], int(np.prod(data.shape[1:]))
        for row in wanted:
            mask, raw = data.id.read_direct_chunk((row, ) + (0, ) * len(shape))
            pixels = _INFLATE(raw) if mask == 0 else b''
            if len(pixels) != size:  # a skipped filter: let HDF5 read it
                out[row] = data[row]
                continue
            # A writable array (torch refuses to wrap read-only memory).
            out[row] = np.frombuffer(bytearray(pixels),
                                     np.uint8).reshape(shape)
        return out
    start = 0
    while start < len(wanted):
        stop = start + 1
        while stop < len(wanted) and wanted[stop] == wanted[stop - 1] + 1:
            stop += 1
        block = data[wanted[start]:wanted[stop - 1] + 1]
        out.update(zip(wanted[start:stop], block))
        start = stop
    return out


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
