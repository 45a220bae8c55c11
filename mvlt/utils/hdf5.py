"""Per-process read-only HDF5 handles and the one image-row reader of
Fashion-Gen-layout files (torch-free): used by the data sets, the loading
transforms and the catalogue search's gallery (which reads rows without
torch when it serves ONNX graphs)."""
import os
import os.path as osp
import zlib
from typing import Callable, Dict, List, Optional, Sequence

import h5py
import numpy as np

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
