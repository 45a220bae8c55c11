"""Safe loading and crash-safe writing of MMEngine checkpoints.

Loading: since torch 2.6 ``torch.load`` refuses every global that is not
allow-listed, and MMEngine 0.10.7 checkpoints hold its ``HistoryBuffer`` (with
NumPy arrays and its statistics methods pickled as
``getattr(HistoryBuffer, 'min')``) in their ``message_hub``. Instead of turning
the safety off, this module allow-lists exactly those types and replaces
``getattr`` by a version that only returns the statistics methods of
``HistoryBuffer``; anything else in a checkpoint (for example a ``__reduce__``
payload that would run code) is refused with an error that names the file.
The allow-list covers everything MMEngine 0.10.7 and mvlt's hooks write
(weights, optimizer / scheduler / AMP-scaler state, message hub, RNG and
sampler state), so resuming needs no full unpickle either: every local load
is ``weights_only=True``.

:func:`register_safe_checkpoint_loader` makes :func:`load_checkpoint_file`
MMEngine's loader for local paths, so that ``load_from``, ``--resume`` and
``tools/test.py`` all go through it. Importing this module changes nothing in
MMEngine: :func:`mvlt.utils.register_all_modules` (called by every tool and
by ``MVLTInferencer``) does the registration.

Writing: :func:`replace_atomically` and :func:`write_text_atomically` give
the temporary-file + fsync + rename sequence that makes a kill at any moment
leave either the old or the new file, never a torn one;
:func:`is_complete_checkpoint` and :func:`latest_complete_checkpoint` find
the newest whole checkpoint of a folder.
"""
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Callable, List, Optional, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader

#: HistoryBuffer's built-in statistics; user-registered ones are read from
#: ``HistoryBuffer._statistics_methods`` at load time.
_HISTORY_BUFFER_METHODS = frozenset({'min', 'max', 'mean', 'current'})

#: NumPy scalar types whose arrays / scalars may appear in a checkpoint
#: (message-hub statistics, metric values). Object arrays are left out.
_NUMPY_TYPES = (np.bool_, np.float16, np.float32, np.float64, np.int8,
                np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                np.uint64)


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to the statistics methods of HistoryBuffer."""
    allowed = _HISTORY_BUFFER_METHODS.union(HistoryBuffer._statistics_methods)
    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and \
            name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refused to load getattr({type(obj).__name__}, {name!r})')


def _numpy_globals() -> List[Union[Callable, tuple]]:
    core = getattr(np, '_core', None) or np.core
    dtype_classes = [type(np.dtype(t)) for t in _NUMPY_TYPES]
    return [
        np.ndarray, np.dtype, core.multiarray._reconstruct,
        core.multiarray.scalar
    ] + dtype_classes


def safe_globals() -> List[Union[Callable, tuple]]:
    """The exact set of non-tensor globals an MMEngine checkpoint needs."""
    return [
        HistoryBuffer, (_restricted_getattr, 'builtins.getattr'),
        (_restricted_getattr, '__builtin__.getattr')
    ] + _numpy_globals()


def load_checkpoint_file(
        filename: str,
        map_location: Union[str, torch.device, Callable, None] = 'cpu',
        extra_safe_globals: Optional[List[Callable]] = None) -> Any:
    """``torch.load`` a local checkpoint with weights-only unpickling.

    The one reader of checkpoint files: MMEngine's loader of local paths
    (:func:`register_safe_checkpoint_loader`),
    :func:`mvlt.utils.checkpoint_loading.load_model_checkpoint` and the
    converters all call it.

    Args:
        filename (str): Path of the ``.pth`` file.
        map_location: As for ``torch.load``.
        extra_safe_globals (list, optional): Further allow-listed globals
            (the reference code's checkpoints hold an
            ``argparse.Namespace``).

    Returns:
        The unpickled object (usually a dict with ``state_dict``).

    Raises:
        FileNotFoundError: The file does not exist.
        RuntimeError: The file is truncated or corrupt, or holds objects
            outside the allow-list; the message names the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} does not exist.')
    try:
        allowed = safe_globals() + list(extra_safe_globals or [])
        with torch.serialization.safe_globals(allowed):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except Exception as err:
        text = str(err)
        lowered = text.lower()
        if any(
                word in lowered
                for word in ('unsupported global', 'refused to load',
                             'weightsunpickler')):
            reason = ('it holds objects that are not weights or MMEngine '
                      'training state (a pickle that could run code is '
                      'refused; nothing in it was executed)')
        else:
            reason = ('it is truncated or corrupt, or not a torch checkpoint '
                      '(an interrupted copy or write?); use an earlier '
                      'checkpoint')
        detail = [
            line for line in text.splitlines()
            if line.strip() and not line.startswith(
                ('Weights only load failed', 'Please file', 'Check the'))
        ]
        detail = detail[0].strip() if detail else type(err).__name__
        raise RuntimeError(f'Cannot load checkpoint {filename}: {reason} '
                           f'({detail[:300]}).') from None


def _load_local(filename: str, map_location=None) -> Any:
    return load_checkpoint_file(filename, map_location)


def register_safe_checkpoint_loader() -> None:
    """Make :func:`load_checkpoint_file` MMEngine's loader of local paths.

    Replaces ``mmengine.runner.checkpoint.load_from_local`` (a plain
    ``torch.load``, which refuses MMEngine's own training state since torch
    2.6) in ``CheckpointLoader`` for the rest of the process, so that
    ``Runner.load_checkpoint`` / ``resume`` and ``mmengine.runner.
    load_checkpoint`` read local files weights-only. Idempotent. Called by
    :func:`mvlt.utils.register_all_modules`.
    """
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_local, force=True)


def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temporary_path(path: str) -> str:
    """A hidden sibling of ``path`` for writing it atomically.

    Same directory (a rename across file systems is not atomic); the pid
    keeps ranks / processes that write the same name apart.
    """
    directory, name = osp.split(path)
    return osp.join(directory, f'.{name}.{os.getpid()}.tmp')


def is_temporary_path(name: str) -> bool:
    """Whether a file name was made by :func:`temporary_path`."""
    return name.startswith('.') and name.endswith('.tmp')


def replace_atomically(tmp_path: str, path: str) -> None:
    """fsync ``tmp_path``, rename it to ``path`` and fsync the directory.

    After this returns, ``path`` holds the new content even after a power
    loss; before it, ``path`` still holds the old one.
    """
    with open(tmp_path, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, path)
    _fsync_dir(osp.dirname(osp.abspath(path)))


def write_text_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see old or new, never half.
    """
    tmp_path = temporary_path(path)
    with open(tmp_path, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
    replace_atomically(tmp_path, path)


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file.

    ``torch.save`` writes a zip archive whose central directory comes last,
    so a file cut short by a kill or a full disk lacks it; checking it reads
    only the end of the file. Files in torch's legacy (non-zip) format count
    as incomplete.
    """
    return osp.isfile(path) and zipfile.is_zipfile(path)


def checkpoint_step(name: str, filename_tmpl: str) -> Optional[int]:
    """The step in a checkpoint file name, or None if it does not match.

    Args:
        name (str): A file name or path (its last part is matched).
        filename_tmpl (str): The checkpoint names, ``'{}'`` standing for the
            step, as ``CheckpointHook.filename_tmpl`` (``'epoch_{}.pth'``).
    """
    pattern = '^' + re.escape(filename_tmpl).replace(
        re.escape('{}'), r'(\d+)') + '$'
    match = re.match(pattern, osp.basename(name.rstrip(os.sep)))
    return int(match.group(1)) if match else None


def latest_complete_checkpoint(folder: str,
                               filename_tmpl: str) -> Optional[str]:
    """The complete checkpoint of ``folder`` with the highest step.

    Args:
        folder (str): A local directory (missing: None).
        filename_tmpl (str): As for :func:`checkpoint_step`.

    Returns:
        str | None: Path of the file with the highest step that
        :func:`is_complete_checkpoint` accepts, or None.
    """
    if not osp.isdir(folder):
        return None
    found = []
    for name in os.listdir(folder):
        step = checkpoint_step(name, filename_tmpl)
        if step is not None and is_complete_checkpoint(osp.join(folder, name)):
            found.append((step, name))
    return osp.join(folder, max(found)[1]) if found else None


#: Parameter names whose first dimension is the word-piece vocabulary.
VOCAB_KEYS = ('word_embeddings.weight', 'mlm.bias', 'mlm.decoder.weight',
              'mlm.decoder.bias')


def check_state_dict_shapes(model: torch.nn.Module,
                            state_dict: dict,
                            filename: Optional[str] = None) -> None:
    """Raise when a checkpoint tensor does not fit the model's one.

    MMEngine's non-strict loading only warns about such tensors and leaves
    them randomly initialised, which silently ruins an evaluation.

    Args:
        model (nn.Module): The (unwrapped) model.
        state_dict (dict): Checkpoint weights with the model's key names.
        filename (str, optional): The checkpoint, for the message (None:
            "the checkpoint being loaded").

    Raises:
        ValueError: Naming the file, up to five mismatching keys with both
            shapes, and for word-piece tables the two vocabulary sizes.
    """
    own = model.state_dict()
    mismatched = [(key, tuple(value.shape), tuple(own[key].shape))
                  for key, value in state_dict.items()
                  if key in own and hasattr(value, 'shape')
                  and tuple(value.shape) != tuple(own[key].shape)]
    if not mismatched:
        return
    name = f'Checkpoint {filename}' if filename else \
        'The checkpoint being loaded'
    vocab = [(ckpt[0], mine[0]) for key, ckpt, mine in mismatched
             if key.endswith(VOCAB_KEYS) and ckpt and mine]
    listing = '; '.join(f'{key}: checkpoint {list(ckpt)} vs model {list(mine)}'
                        for key, ckpt, mine in mismatched[:5])
    more = f' and {len(mismatched) - 5} more' if len(mismatched) > 5 else ''
    if vocab:
        ckpt_size, model_size = vocab[0]
        raise ValueError(
            f'{name} was trained with a vocabulary of '
            f'{ckpt_size} word pieces but the model has {model_size} (from '
            'its tokenizer vocab_file): use the vocabulary the checkpoint was '
            'trained with, or extend it and the checkpoint with '
            'tools/misc/extend_vocab.py (old ids kept; docs/custom_data.md). '
            f'Mismatching tensors: {listing}{more}.')
    raise ValueError(
        f'{name} does not fit the model: {listing}{more}. '
        'Build the model with the settings the checkpoint was trained with '
        '(widths, image size, number of classes), or drop those keys from '
        'the checkpoint to train them anew.')
