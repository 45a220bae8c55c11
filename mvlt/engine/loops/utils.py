"""Checks and helpers shared by the test loops of mvlt."""
import logging
from typing import Optional, Sequence

import torch
from mmengine.dist import get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.utils import ProgressBar

from mvlt.utils.heads_check import check_checkpoint_heads


def build_test_evaluator(runner, evaluator) -> Evaluator:
    """Build a test loop's evaluator; a missing one is a clear error."""
    if evaluator is None or evaluator == [] or evaluator == {}:
        raise ValueError(
            'The test config has no evaluator: set test_evaluator (e.g. '
            "dict(type='RetrievalMetric'), dict(type='RecognitionMetric') or "
            "dict(type='ReconstructionMetric')).")
    if isinstance(evaluator, (dict, list)):
        return runner.build_evaluator(evaluator)
    return evaluator


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP / MMEngine wrapper."""
    return model.module if is_model_wrapper(model) else model


def _heads_hook(runner):
    """The heads of the checkpoint the runner loaded, as its
    :class:`CheckpointHeadsHook` saw them, or None (a config without the
    hook, or nothing loaded)."""
    from mvlt.engine.hooks import CheckpointHeadsHook
    for hook in getattr(runner, 'hooks', ()):
        if isinstance(hook, CheckpointHeadsHook) and hook.loaded:
            return hook.loaded
    return None


def check_model_heads(runner, model: torch.nn.Module,
                      heads: Sequence[str]) -> None:
    """The model builds ``heads`` and the checkpoint under test has them.

    MMEngine loads checkpoints non-strictly, so without this check a test
    would silently score with randomly initialised heads. The checkpoint's
    heads are those the ``CheckpointHeadsHook`` saw when the runner loaded
    it (``configs/_base_/default_runtime.py``); a config without that hook
    has the file read again.

    Raises:
        KeyError: The model does not build a head, or the checkpoint
            (``load_from``) has no weights for it.
    """
    missing = [h for h in heads if h not in model.heads]
    if missing:
        raise KeyError(f'This test needs the model head(s) {missing}, but '
                       f'model.heads builds only {sorted(model.heads)}; add '
                       'them to the config.')
    # A head without weights of its own (zero-shot) names those it reads.
    heads = tuple(
        dict.fromkeys(
            name for head in heads
            for name in getattr(model.heads[head], 'reads_heads', (head, ))))
    checkpoint = runner.cfg.get('load_from')
    hook = _heads_hook(runner)
    if hook is not None:
        hook.check(heads)
    elif checkpoint:
        check_checkpoint_heads(checkpoint, heads)
    else:
        print_log(
            'Testing without a checkpoint (load_from is None): the heads '
            'are randomly initialised.',
            logger='current',
            level=logging.WARNING)


def checkpoint_has_heads(runner, heads: Sequence[str]) -> bool:
    """Whether the checkpoint under test (``load_from``) holds weights for
    every head in ``heads`` (False without a checkpoint)."""
    hook = _heads_hook(runner)
    if hook is not None:
        return hook.has(heads)
    checkpoint = runner.cfg.get('load_from')
    if not checkpoint:
        return False
    try:
        check_checkpoint_heads(checkpoint, heads)
    except KeyError:
        return False
    return True


class RankZeroProgress:
    """A progress bar on rank 0 only (the test loops' habit).

    Args:
        enabled (bool): Show bars at all (``show_progress``).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: Optional[ProgressBar] = None

    def start(self, total: int, what: Optional[str] = None) -> None:
        """A new bar for ``total`` units of this process's work, after
        logging ``what`` (the previous bar is closed)."""
        self.finish()
        if self.enabled and get_dist_info()[0] == 0 and total > 0:
            if what:
                print_log(what, logger='current')
            self._bar = ProgressBar(total)

    def advance(self, count: int = 1) -> None:
        """Move the bar by ``count`` units."""
        if self._bar is not None and count > 0:
            self._bar.update(count)

    def finish(self) -> None:
        """End the bar's line."""
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar = None
