"""Stopping or skipping on NaN / Inf losses, with the term and iteration."""
import logging
import math
from typing import Any, Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper

from mvlt.registry import HOOKS
from ..optim_wrappers import NonFiniteSkipOptimWrapper


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Watch the loss terms for NaN / Inf after every training iteration.

    It reads the values MMEngine's ``RuntimeInfoHook`` has already moved to
    the host for the log (no extra device sync). On a non-finite term:

    * if the optimizer wrapper skipped the update
      (:class:`~mvlt.engine.NonFiniteSkipOptimWrapper`, or AMP's loss
      scaler) the step is counted (``nonfinite_steps`` in the log and in
      the checkpoint's message hub) and a warning names the terms, the
      iteration and the batch's files;
    * after ``max_consecutive`` bad steps in a row, or at the first one when
      the update could not be skipped or a non-finite value reached a model
      buffer (BatchNorm statistics), it raises ``FloatingPointError``. It
      runs before the checkpoint hook, so nothing non-finite is saved.

    Args:
        max_consecutive (int, optional): Bad steps in a row that stop the
            run; 1 stops at the first, None never stops (skip and count).
    """

    priority = 'ABOVE_NORMAL'  # after RuntimeInfoHook, before checkpoints

    def __init__(self, max_consecutive: Optional[int] = 3) -> None:
        if max_consecutive is not None and max_consecutive < 1:
            raise ValueError('NonFiniteGuardHook: max_consecutive must be '
                             f'>= 1 or None, got {max_consecutive}.')
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.total = 0
        self._can_skip = False

    def before_train(self, runner) -> None:
        self.consecutive = 0
        self.total = int(runner.message_hub.get_info('nonfinite_steps', 0))
        wrapper = runner.optim_wrapper
        self._can_skip = isinstance(wrapper, (NonFiniteSkipOptimWrapper,
                                              AmpOptimWrapper))
        if not self._can_skip and self.max_consecutive != 1:
            print_log(
                f'NonFiniteGuardHook: {type(wrapper).__name__} cannot skip '
                'a non-finite update, so the run stops at the first one; use '
                "optim_wrapper.type='NonFiniteSkipOptimWrapper' to skip "
                'and count them instead.',
                logger='current',
                level=logging.WARNING)

    @staticmethod
    def _bad_terms(runner, outputs: Dict[str, Any]) -> Dict[str, float]:
        bad = {}
        for key in outputs:
            if 'loss' not in key:
                continue
            buffer = runner.message_hub.log_scalars.get(f'train/{key}')
            value = float(buffer.current()) if buffer is not None \
                else float(outputs[key])
            if not math.isfinite(value):
                bad[key] = value
        # The terms first; their sum ('loss') says little on its own.
        return dict(sorted(bad.items(), key=lambda item: item[0] == 'loss'))

    @staticmethod
    def _bad_buffers(runner) -> list:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        return [
            name for name, buffer in model.named_buffers()
            if buffer.is_floating_point()
            and not bool(torch.isfinite(buffer).all())
        ]

    @staticmethod
    def _batch_files(data_batch: Any) -> str:
        samples = data_batch.get('data_samples') if isinstance(
            data_batch, dict) else None
        names = [
            sample.metainfo.get('img_path', sample.metainfo.get('sample_idx'))
            for sample in (samples or [])[:4] if hasattr(sample, 'metainfo')
        ]
        names = [str(name) for name in names if name is not None]
        return f' Batch starts with: {", ".join(names)}.' if names else ''

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        bad = self._bad_terms(runner, outputs or {})
        skipped = bool(
            getattr(runner.optim_wrapper, 'last_step_skipped', False))
        if not bad and not skipped:
            self.consecutive = 0
            return
        self.consecutive += 1
        self.total += 1
        runner.message_hub.update_info('nonfinite_steps', self.total)
        runner.message_hub.update_scalar('train/nonfinite_steps', self.total)
        what = ', '.join(f'{key}={value}' for key, value in bad.items()) \
            if bad else 'the gradient norm (all loss terms finite)'
        where = (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})')
        files = self._batch_files(data_batch)
        # Slow path only: a NaN forward pass may have reached BN statistics,
        # which skipping the update does not undo.
        bad_buffers = self._bad_buffers(runner)
        reason = None
        if bad_buffers:
            reason = (f'non-finite values reached the model buffers '
                      f'{bad_buffers[:3]}, which skipping cannot undo')
        elif not self._can_skip and bad:
            reason = (f'{type(runner.optim_wrapper).__name__} applied the '
                      'update (it cannot skip one)')
        elif self.max_consecutive is not None and \
                self.consecutive >= self.max_consecutive:
            reason = (f'{self.consecutive} bad steps in a row '
                      f'(max_consecutive={self.max_consecutive})')
        if reason is None:
            print_log(
                f'Non-finite {what} at {where}; the update was skipped '
                f'({self.consecutive} in a row, {self.total} in total).'
                f'{files}',
                logger='current',
                level=logging.WARNING)
            return
        last = runner.message_hub.get_info('last_ckpt')
        raise FloatingPointError(
            f'Non-finite {what} at {where}: {reason}. Training stopped '
            'before saving' +
            (f'; the last checkpoint {last} is unaffected' if last else '') +
            '. Lower the learning rate, check the data, or enable '
            f'clip_grad / AMP.{files}')
