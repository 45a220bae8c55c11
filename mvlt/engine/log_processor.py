"""Training log lines that show the position in the epoch after a resume."""
from typing import Tuple

from mmengine.runner import LogProcessor

from mvlt.engine.hooks.resume_state_hook import ResumeStateHook
from mvlt.registry import LOG_PROCESSORS


def skipped_batches(runner) -> int:
    """Batches at the start of the current training epoch that this run did
    not load because the run it resumed had trained on them (see
    :meth:`ResumeStateHook.skipped_batches`); 0 without that hook."""
    for hook in runner.hooks:
        if isinstance(hook, ResumeStateHook):
            return hook.skipped_batches(runner.epoch)
    return 0


@LOG_PROCESSORS.register_module()
class ResumeAwareLogProcessor(LogProcessor):
    """MMEngine's ``LogProcessor`` whose training lines count iterations
    from the start of the epoch, also in an epoch resumed in its middle.

    MMEngine labels a training line ``[epoch][batch_idx + 1/len]`` with the
    loop's batch index, which restarts at 0 when a run resumed in the middle
    of an epoch starts its dataloader at the next untrained batch (with
    :class:`~mvlt.datasets.ResumableSampler`): iterations 9-12 of a
    6-iteration epoch resumed after 8 were logged ``[2][1/6]`` ...
    ``[2][4/6]``. This processor adds the batches the resumed epoch skipped
    (:class:`~mvlt.engine.hooks.ResumeStateHook` records them), so those
    lines read ``[2][3/6]`` ... ``[2][6/6]`` as in an uninterrupted run,
    and ``window_size='epoch'`` averages over the whole epoch. Validation
    and test lines, and ``by_epoch=False`` lines (global iteration), are
    MMEngine's.

    Select it with ``log_processor = dict(type='ResumeAwareLogProcessor',
    ...)`` (``configs/_base_/default_runtime.py``); the arguments are
    ``LogProcessor``'s.
    """

    def get_log_after_iter(self, runner, batch_idx: int,
                           mode: str) -> Tuple[dict, str]:
        """MMEngine's log line, with ``batch_idx`` the position in the
        epoch (0-based) for training lines."""
        if mode == 'train' and self.by_epoch:
            batch_idx += skipped_batches(runner)
        return super().get_log_after_iter(runner, batch_idx, mode)
