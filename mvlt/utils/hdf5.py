"""Per-process read-only HDF5 handles (torch-free): the one opener of
Fashion-Gen-layout files, used by the data sets, the loading transforms and
the catalogue search's gallery."""
import os
import os.path as osp
from typing import Dict, List, Optional

import h5py

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
