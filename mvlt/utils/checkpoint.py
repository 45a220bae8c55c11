"""Loading MMEngine checkpoints with ``torch.load(weights_only=True)``.

Since torch 2.6 ``torch.load`` refuses every global that is not allow-listed,
and MMEngine 0.10.7 checkpoints hold its ``HistoryBuffer`` (with NumPy arrays
and its statistics methods pickled as ``getattr(HistoryBuffer, 'min')``) in their
``message_hub``. Instead of turning the safety off, this module allow-lists
exactly those types and replaces ``getattr`` by a version that only returns
the statistics methods of ``HistoryBuffer``; anything else in a checkpoint
(for example a ``__reduce__`` payload that would run code) is refused with an
error that names the file.

Importing :mod:`mvlt.utils` registers :func:`load_checkpoint_file` as
MMEngine's loader for local paths, so ``load_from``, ``--resume`` and
``tools/test.py`` all go through it.
"""
import os.path as osp
from typing import Any, Callable, List, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader

#: HistoryBuffer's built-in statistics; user-registered ones are read from
#: ``HistoryBuffer._statistics_methods`` at load time.
_HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'mean', 'current'})


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to the statistics methods of HistoryBuffer."""
    allowed = _HISTORY_BUFFER_METHODS.union(HistoryBuffer._statistics_methods)
    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and \
            name in allowed:
        return getattr(obj, name)
    raise pickle_error(f'getattr({type(obj).__name__}, {name!r})')


def pickle_error(what: str) -> Exception:
    import pickle
    return pickle.UnpicklingError(f'refused to load {what}')


def _numpy_globals() -> List[Union[Callable, tuple]]:
    core = getattr(np, '_core', None) or np.core
    names = [core.multiarray._reconstruct, core.multiarray.scalar]
    dtype_classes = [type(np.dtype(t)) for t in (
        np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
        np.int64, np.uint8, np.bool_)]
    return [np.ndarray, np.dtype] + names + dtype_classes


def safe_globals() -> List[Union[Callable, tuple]]:
    """The exact set of non-tensor globals an MMEngine checkpoint needs."""
    return [HistoryBuffer, (_restricted_getattr, 'builtins.getattr'),
            (_restricted_getattr, '__builtin__.getattr')] + _numpy_globals()


def load_checkpoint_file(filename: str,
                         map_location: Union[str, torch.device,
                                             None] = 'cpu') -> Any:
    """``torch.load`` a local checkpoint with weights-only unpickling.

    Raises:
        FileNotFoundError: The file does not exist.
        RuntimeError: The file is truncated or corrupt, or holds objects
            outside the allow-list; the message names the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist.')
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except Exception as err:
        text = str(err)
        if 'Unsupported global' in text or 'refused to load' in text or \
                'WeightsUnpickler' in text:
            reason = ('it holds objects that are not weights or MMEngine '
                      'training state (a pickle that could run code is '
                      'refused)')
        else:
            reason = 'it is truncated or corrupt, or not a torch checkpoint'
        detail = [
            line for line in text.splitlines()
            if line.strip() and not line.startswith(
                ('Weights only load failed', 'Please file', 'Check the'))
        ]
        detail = detail[0].strip() if detail else type(err).__name__
        raise RuntimeError(f'Cannot load checkpoint {filename}: {reason} '
                           f'({detail[:300]}).') from None


@CheckpointLoader.register_scheme(prefixes='', force=True)
def _load_local(filename: str, map_location=None) -> Any:
    return load_checkpoint_file(filename, map_location)
