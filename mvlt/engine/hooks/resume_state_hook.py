"""Random-number and data-order state in checkpoints, for exact resumes."""
import logging
import random
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop

from mvlt.registry import HOOKS

#: Key of the hook's entry in a checkpoint dict.
CHECKPOINT_KEY = 'resume_state'


def capture_rng_state(data_preprocessor: Optional[Any] = None) -> dict:
    """The random states of this process (weights-only picklable).

    Args:
        data_preprocessor: An object with ``rng_state()`` (the generator of
            mask, caption-masking and ITM-negative draws), or None.

    Returns:
        dict: ``torch`` (CPU state), ``cuda`` (one state per device),
        ``numpy`` (``keys`` int64 tensor + position fields), ``python``
        (``random.getstate()``), ``preprocessor`` (tensor or None).
    """
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() else [],
        numpy=dict(
            name=name,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            gauss=float(gauss)),
        python=random.getstate(),
        preprocessor=None)
    if data_preprocessor is not None and hasattr(data_preprocessor,
                                                 'rng_state'):
        preprocessor_state = data_preprocessor.rng_state()
        if preprocessor_state is not None:
            state['preprocessor'] = preprocessor_state.cpu()
    return state


def restore_rng_state(state: dict,
                      data_preprocessor: Optional[Any] = None) -> None:
    """Set the random states saved by :func:`capture_rng_state`.

    Generators take CPU byte tensors; a checkpoint loaded with
    ``map_location='cuda'`` (MMEngine's resume) holds them on the GPU.
    """
    torch.set_rng_state(state['torch'].cpu())
    if state['cuda'] and torch.cuda.is_available():
        if len(state['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])
        else:
            print_log(
                f'The checkpoint holds CUDA random states of '
                f'{len(state["cuda"])} devices but this process sees '
                f'{torch.cuda.device_count()}; they are not restored.',
                logger='current',
                level=logging.WARNING)
    numpy_state = state['numpy']
    np.random.set_state(
        (numpy_state['name'],
         numpy_state['keys'].cpu().numpy().astype(np.uint32),
         numpy_state['pos'], numpy_state['has_gauss'], numpy_state['gauss']))
    random.setstate(_as_tuples(state['python']))
    if state['preprocessor'] is not None and data_preprocessor is not None:
        data_preprocessor.load_rng_state(state['preprocessor'].cpu())


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` needs tuples where a round trip may give lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value


@HOOKS.register_module()
class ResumeStateHook(Hook):
    """Make a resumed run continue exactly like an uninterrupted one.

    MMEngine's checkpoint holds model, optimizer (with the AMP loss scaler),
    parameter schedulers, iteration and seed. This hook adds, under
    ``checkpoint['resume_state']``:

    * the random states of every rank: torch CPU / CUDA, NumPy, Python
      ``random`` and the data preprocessor's generator (image masks,
      caption masking, ITM negatives);
    * the data order: epoch, iterations done in it and the sampler seed.
      With a :class:`~mvlt.datasets.ResumableSampler` and an epoch-based
      loop, a run resumed from an iteration checkpoint in the middle of an
      epoch continues with the next batch of that epoch instead of
      restarting the epoch. (An ``IterBasedTrainLoop`` skips the trained
      batches itself.) :meth:`skipped_batches` tells how many batches that
      epoch skips, so that ``ResumeAwareLogProcessor`` logs the position
      in the epoch rather than the loop's batch index.

    It also gives the training dataloader its own ``torch.Generator``,
    re-seeded each epoch, so that starting a dataloader iterator (which
    draws a worker base seed) does not advance the global torch generator
    that dropout uses; otherwise a resume in mid-epoch would shift it by one
    draw.

    With these, a run killed with SIGKILL and resumed from its last
    checkpoint ends with bitwise the same weights on CPU with
    ``randomness.deterministic=True`` and ``num_workers=0`` (dataloader
    workers re-start their own seeds after a resume, which changes random
    augmentations done in them; the mvlt pipelines draw nothing there).

    In distributed training the states of all ranks are gathered (one
    ``all_gather_object``) at the iterations where the checkpoint hook
    saves, and each rank restores its own.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW) saves

    def __init__(self) -> None:
        self._gathered: Optional[List[dict]] = None
        self._loaded: Optional[dict] = None
        # (epoch, batches) that this run skips because the run it resumes
        # had trained on them.
        self._skipped: Optional[Tuple[int, int]] = None

    def skipped_batches(self, epoch: int) -> int:
        """Batches at the start of ``epoch`` that this run does not load.

        After a resume in the middle of epoch ``epoch`` (0-based, as
        ``runner.epoch``) the training dataloader starts at that epoch's
        next batch, so the loop's batch index of that epoch is this many
        batches behind the position in the epoch. 0 for any other epoch
        and for runs that did not resume in the middle of an epoch.
        """
        if self._skipped is not None and self._skipped[0] == epoch:
            return self._skipped[1]
        return 0

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _preprocessor(runner) -> Any:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        return getattr(model, 'data_preprocessor', None)

    @staticmethod
    def _sampler(runner) -> Any:
        loader = runner.train_dataloader
        sampler = getattr(loader, 'sampler', None)
        if not hasattr(sampler, 'set_epoch'):
            sampler = getattr(
                getattr(loader, 'batch_sampler', None), 'sampler', None)
        return sampler

    @staticmethod
    def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                return hook
        return None

    def _gather_if_saving(self, runner, by_epoch: bool) -> None:
        """All ranks hand their states to rank 0 before a periodic save."""
        if get_world_size() == 1:
            return
        hook = self._checkpoint_hook(runner)
        if hook is None or hook.by_epoch != by_epoch:
            return
        if by_epoch:
            saving = hook.every_n_epochs(
                runner, hook.interval,
                hook.save_begin) or (hook.save_last
                                     and hook.is_last_train_epoch(runner))
        else:
            saving = hook.every_n_train_iters(
                runner, hook.interval,
                hook.save_begin) or (hook.save_last
                                     and hook.is_last_train_iter(runner))
        if saving:
            self._gathered = all_gather_object(
                capture_rng_state(self._preprocessor(runner)))

    # -------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        loader.generator = torch.Generator()
        loader.generator.manual_seed(int(runner.seed or 0))
        self._skipped = None
        state, self._loaded = self._loaded, None
        if state is None or state.get('iter') != runner.iter:
            return  # a fresh run, or load_from (weights only)
        self._restore_data_order(runner, state['sampler'])
        rng = state['rng']
        if len(rng) != get_world_size():
            print_log(
                f'The checkpoint holds random states of {len(rng)} ranks '
                f'but the run has {get_world_size()}; rank 0 continues '
                'from its state and the others from fresh seeds.',
                logger='current',
                level=logging.WARNING)
            if get_rank() != 0:
                return
        restore_rng_state(rng[get_rank()], self._preprocessor(runner))
        print_log(
            f'Restored random states and data order at iteration '
            f'{runner.iter}.',
            logger='current')

    def _restore_data_order(self, runner, saved: dict) -> None:
        sampler = self._sampler(runner)
        if saved.get('seed') is not None and hasattr(sampler, 'seed'):
            sampler.seed = saved['seed']
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            return  # it skips the trained batches itself
        loader = runner.train_dataloader
        done = saved['iter'] - saved['epoch'] * saved['iters_per_epoch']
        if done <= 0:
            return
        if saved['iters_per_epoch'] != len(loader):
            print_log(
                f'The checkpoint was saved with {saved["iters_per_epoch"]} '
                f'iterations per epoch, this run has {len(loader)}: epoch '
                f'{saved["epoch"]} restarts from its beginning.',
                logger='current',
                level=logging.WARNING)
            return
        if not hasattr(sampler, 'set_start'):
            print_log(
                f'Resuming in the middle of epoch {saved["epoch"]} ({done} '
                f'of {len(loader)} iterations done) but the sampler '
                f'{type(sampler).__name__} cannot skip them, so the epoch '
                "restarts; use train_dataloader.sampler.type="
                "'ResumableSampler' for an exact resume.",
                logger='current',
                level=logging.WARNING)
            return
        # The last batch of an epoch may be partial.
        sampler.set_start(saved['epoch'],
                          min(done * loader.batch_size, len(sampler)))
        self._skipped = (saved['epoch'], done)

    def before_train_epoch(self, runner) -> None:
        generator = getattr(runner.train_dataloader, 'generator', None)
        if generator is not None:
            generator.manual_seed(int(runner.seed or 0) + runner.epoch)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        self._gather_if_saving(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._gather_if_saving(runner, by_epoch=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint['meta']
        rng, self._gathered = self._gathered, None
        if rng is None:
            rng = [capture_rng_state(self._preprocessor(runner))]
        sampler = self._sampler(runner)
        checkpoint[CHECKPOINT_KEY] = dict(
            iter=meta['iter'],
            rng=rng,
            sampler=dict(
                epoch=meta['epoch'],
                iter=meta['iter'],
                iters_per_epoch=len(runner.train_dataloader),
                seed=getattr(sampler, 'seed', None)))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state: Optional[Dict[str, Any]] = checkpoint.get(CHECKPOINT_KEY)
        # Applied in before_train, after MMEngine's resume has re-seeded.
        self._loaded = state
