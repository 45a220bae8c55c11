"""The one way a checkpoint gets into an MVLT model, with every check.

A checkpoint is read once, weights-only (:func:`load_checkpoint_file`), and
then checked before any weight is copied:

* shapes, with the two vocabulary sizes for word-piece tables
  (:func:`check_state_dict_shapes`);
* the heads a task needs (:func:`check_checkpoint_heads`);
* the class names it was trained with against the data's
  (:func:`label_map_mismatch`).

The Runner reaches these checks through hooks on
``after_load_checkpoint`` (``CheckpointShapeCheckHook``,
``LabelMapCheckHook``, ``CheckpointHeadsHook``: MMEngine reads the file and
the hooks see it once); :class:`mvlt.apis.MVLTInferencer` (and so the
search index and the demos) and the converters call
:func:`load_model_checkpoint`, which runs the same functions, so both paths
refuse a wrong or partial checkpoint with the same message.
"""
import re
from typing import Mapping, Optional, Sequence, Tuple

import torch
from mmengine.runner import load_state_dict

from .checkpoint import check_state_dict_shapes, load_checkpoint_file
from .heads_check import check_checkpoint_heads, checkpoint_state_dict

#: ``Runner.load_checkpoint``'s default ``revise_keys`` (MMEngine 0.10.7):
#: DDP's ``module.`` prefix is dropped.
STRIP_MODULE_PREFIX = ((r'^module\.', ''), )

#: Metainfo keys holding the class-name lists a category head was trained
#: with (``meta.dataset_meta`` of an MMEngine checkpoint).
LABEL_MAP_KEYS = ('categories', 'subcategories')


def revise_state_dict(
    state_dict: Mapping,
    revise_keys: Sequence[Tuple[str, str]] = (STRIP_MODULE_PREFIX)
) -> dict:
    """``state_dict`` with ``(pattern, replacement)`` applied to each key, as
    ``mmengine.runner.load_checkpoint`` does before loading."""
    revised = {}
    for key, value in state_dict.items():
        for pattern, replacement in revise_keys:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    return revised


def label_map_mismatch(checkpoint: Mapping,
                       dataset_meta: Mapping,
                       where: str,
                       keys: Sequence[str] = LABEL_MAP_KEYS) -> Optional[str]:
    """Why the checkpoint's class names differ from a data set's, or None.

    Keys that either side lacks or leaves empty are skipped.

    Args:
        checkpoint (Mapping): A loaded checkpoint (its
            ``meta.dataset_meta``).
        dataset_meta (Mapping): The data's metainfo.
        where (str): The data set, for the message (``'the test data set
            (FashionGenDataset)'``).
        keys (Sequence[str]): Metainfo keys holding class-name lists.
    """
    saved_meta = ((checkpoint or {}).get('meta')
                  or {}).get('dataset_meta') or {}
    for key in keys:
        saved = tuple(saved_meta.get(key) or ())
        current = tuple((dataset_meta or {}).get(key) or ())
        if not saved or not current or saved == current:
            continue
        for index, (a, b) in enumerate(zip(saved, current)):
            if a != b:
                difference = (f'id {index} is {a!r} in the checkpoint but '
                              f'{b!r} here')
                break
        else:
            difference = (f'the checkpoint has {len(saved)} names, the data '
                          f'set {len(current)}')
        return (f'The checkpoint being loaded was trained with {key} that '
                f'differ from those of {where}: {difference}. Class ids '
                "would be silently shifted. Build the split's label map from "
                'the training split (label_map_from=<training file>, or '
                f'metainfo=dict({key}=[...]) with the checkpoint\'s '
                'meta.dataset_meta lists).')
    return None


def check_loaded_checkpoint(
    model: torch.nn.Module,
    checkpoint: Mapping,
    filename: Optional[str] = None,
    heads: Sequence[str] = (),
    dataset_meta: Optional[Mapping] = None,
    revise_keys: Sequence[Tuple[str, str]] = (STRIP_MODULE_PREFIX)
) -> None:
    """Every check of a read checkpoint against the model it goes into.

    Args:
        model (nn.Module): The (unwrapped) model.
        checkpoint (Mapping): The read checkpoint (or a bare state dict).
        filename (str, optional): Its file, for the messages.
        heads (Sequence[str]): Heads that must have weights (none: no check).
        dataset_meta (Mapping, optional): Metainfo whose class names must be
            those of the checkpoint's ``meta.dataset_meta``.
        revise_keys: Key rewrites before comparing (``module.`` stripped).

    Raises:
        ValueError: A tensor of another shape (or another vocabulary size),
            or other class names.
        KeyError: A needed head (or the backbone) has no weights.
    """
    state_dict = revise_state_dict(
        checkpoint_state_dict(checkpoint), revise_keys)
    check_state_dict_shapes(model, state_dict, filename)
    if heads:
        check_checkpoint_heads(state_dict, heads, filename or '')
    if dataset_meta is not None:
        message = label_map_mismatch(checkpoint, dataset_meta,
                                     'the data set of the config')
        if message:
            raise ValueError(message)


def load_model_checkpoint(
    model: torch.nn.Module,
    filename: str,
    heads: Sequence[str] = (),
    dataset_meta: Optional[Mapping] = None,
    strict: bool = False,
    revise_keys: Sequence[Tuple[str, str]] = (STRIP_MODULE_PREFIX)
) -> dict:
    """Read ``filename`` once (weights-only), check it, load it into
    ``model``.

    Args:
        model (nn.Module): The (unwrapped) model.
        filename (str): A local ``.pth`` file.
        heads, dataset_meta, revise_keys: As for
            :func:`check_loaded_checkpoint`.
        strict (bool): Refuse missing / unexpected keys
            (``torch.nn.Module.load_state_dict``); MMEngine's default for
            ``load_from`` is non-strict, with the keys logged.

    Returns:
        dict: The read checkpoint (``meta``, ``state_dict``...).

    Raises:
        FileNotFoundError / RuntimeError: :func:`load_checkpoint_file`.
        ValueError / KeyError: :func:`check_loaded_checkpoint`.
    """
    checkpoint = load_checkpoint_file(filename, map_location='cpu')
    check_loaded_checkpoint(model, checkpoint, filename, heads, dataset_meta,
                            revise_keys)
    state_dict = revise_state_dict(
        checkpoint_state_dict(checkpoint), revise_keys)
    load_state_dict(model, state_dict, strict=strict)
    return checkpoint


class CheckpointHeads:
    """The heads a read checkpoint holds, checked when a task needs them.

    Keeps the key names only (not the tensors), so the file is read once
    and the weights are not held twice. Used by ``CheckpointHeadsHook`` (the
    Runner's test loops) and :class:`mvlt.apis.MVLTInferencer`.

    Args:
        checkpoint (Mapping): The read checkpoint or state dict.
        filename (str, optional): Its file, for the message.
    """

    def __init__(self,
                 checkpoint: Mapping,
                 filename: Optional[str] = None) -> None:
        self.filename = filename
        self._keys = tuple(
            revise_state_dict(checkpoint_state_dict(checkpoint)))
        self.heads = tuple(
            sorted({
                k.split('.')[1]
                for k in self._keys if k.startswith('heads.')
            }))

    def check(self, heads: Sequence[str]) -> None:
        """Raise ``KeyError`` (:func:`check_checkpoint_heads`) when a head of
        ``heads`` (or the backbone) has no weights."""
        check_checkpoint_heads(
            dict.fromkeys(self._keys), heads, self.filename or '')

    def has(self, heads: Sequence[str]) -> bool:
        """Whether every head of ``heads`` has weights."""
        try:
            self.check(heads)
        except KeyError:
            return False
        return True
