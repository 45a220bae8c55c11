"""A CheckpointHook after which a kill always leaves a loadable checkpoint."""
import functools
import logging
import os
import os.path as osp
from collections import deque
from typing import Callable, List, Optional

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mvlt.registry import HOOKS
from mvlt.utils.checkpoint import (checkpoint_step, is_temporary_path,
                                   latest_complete_checkpoint,
                                   write_text_atomically)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that survives a kill at any moment.

    MMEngine's hook deletes the oldest checkpoint *before* writing the new
    one and rewrites ``last_checkpoint`` in place, so a kill in between can
    leave no loadable checkpoint or an empty ``last_checkpoint``. This hook
    keeps MMEngine's saving (its public ``after_train_iter`` /
    ``after_train_epoch`` run unchanged) and changes the order around them:

    1. Before MMEngine's step, the id of the checkpoint to drop is taken
       off ``keep_ckpt_ids`` so that MMEngine deletes nothing; MMEngine then
       records the new id (``message_hub`` ``keep_ckpt_ids``, saved in the
       checkpoint, as before), writes the checkpoint (with ``MVLTRunner``:
       temporary file, fsync, rename) and ``last_checkpoint``.
    2. ``last_checkpoint`` is written once more through a temporary file,
       fsync and rename, so that it is on disk before anything is deleted.
    3. Only then the dropped checkpoint is deleted.

    A kill while MMEngine rewrites ``last_checkpoint`` in place can still
    leave it empty; :meth:`before_run`, which runs before MMEngine reads it
    (``--resume``), points such a file (empty, or naming a missing file) at
    the newest complete checkpoint (:func:`mvlt.utils.checkpoint.
    latest_complete_checkpoint`), or removes it when there is none.
    Temporary files left by a killed run are deleted in :meth:`before_train`.

    With MMEngine's plain ``Runner`` the order holds as well, but a killed
    write leaves a torn file under the checkpoint's final name (never named
    by ``last_checkpoint``); ``MVLTRunner`` avoids that.

    Args: as :class:`mmengine.hooks.CheckpointHook`.
    """

    def before_run(self, runner) -> None:
        """Repair a ``last_checkpoint`` torn by a kill (main process)."""
        if is_main_process():
            self._repair_last_checkpoint(runner)
        # Other ranks read last_checkpoint when they resume.
        barrier()

    def _checkpoint_folders(self, runner) -> List[str]:
        """Local folders this hook saves into (before ``before_train``)."""
        folders = [runner.work_dir]
        if self.out_dir is not None and self.out_dir != runner.work_dir:
            # CheckpointHook saves into out_dir/<last part of work_dir>.
            folders.append(
                osp.join(
                    str(self.out_dir),
                    osp.basename(runner.work_dir.rstrip(osp.sep))))
        return folders

    def _repair_last_checkpoint(self, runner) -> None:
        path = osp.join(runner.work_dir, 'last_checkpoint')
        if not osp.isfile(path):
            return
        with open(path, encoding='utf-8') as f:
            named = f.read().strip()
        if named and ('://' in named or osp.isfile(named) or (
                # checkpoints saved by deepspeed are directories
                osp.isdir(named)
                and checkpoint_step(named, self.filename_tmpl) is not None)):
            return  # whole (remote paths cannot be checked here)
        found: Optional[str] = None
        for folder in self._checkpoint_folders(runner):
            candidate = latest_complete_checkpoint(folder, self.filename_tmpl)
            if candidate is not None and (found is None
                                          or osp.getmtime(candidate)
                                          > osp.getmtime(found)):
                found = candidate
        what = f'names the missing file {named}' if named else 'is empty'
        if found is None:
            os.remove(path)
            action = 'no complete checkpoint was found, so it was removed'
        else:
            write_text_atomically(path, found)
            action = f'it now names {found}, the newest complete checkpoint'
        print_log(
            f'{path} {what} (a run killed while writing it): {action}.',
            logger='current',
            level=logging.WARNING)

    def before_train(self, runner) -> None:
        """MMEngine's set-up, then removal of stale temporary files."""
        super().before_train(runner)
        if is_main_process():
            self._remove_stale_temporaries({self.out_dir, runner.work_dir})

    def _remove_stale_temporaries(self, folders: set) -> None:
        for folder in folders:
            if not osp.isdir(folder):
                continue  # non-local back-ends keep no temporaries
            for name in os.listdir(folder):
                if is_temporary_path(name) and (
                        name.startswith('.last_checkpoint.')
                        or '.pth.' in name):
                    os.remove(osp.join(folder, name))
                    print_log(
                        f'Removed {name}, left by an interrupted '
                        'checkpoint write.',
                        logger='current')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """MMEngine's iteration-end save (:meth:`_keeping_until_saved`)."""
        self._keeping_until_saved(
            runner,
            functools.partial(CheckpointHook.after_train_iter, self, runner,
                              batch_idx, data_batch, outputs))

    def after_train_epoch(self, runner) -> None:
        """MMEngine's epoch-end save (:meth:`_keeping_until_saved`)."""
        self._keeping_until_saved(
            runner, functools.partial(CheckpointHook.after_train_epoch, self,
                                      runner))

    def _keeping_until_saved(self, runner, save: Callable[[], None]) -> None:
        """Run MMEngine's public hook step ``save`` so that the checkpoint
        it would prune is deleted only after the new one and
        ``last_checkpoint`` are on disk.

        The id to drop is taken off ``keep_ckpt_ids`` first (MMEngine then
        deletes nothing and only appends the new id); when the step saved
        nothing new, the id is put back. A failed save restores the
        bookkeeping that a resume reads.
        """
        keep = self.max_keep_ckpts > 0
        before = list(getattr(self, 'keep_ckpt_ids', ())) if keep else []
        last = getattr(self, 'last_ckpt', None)
        outdated = None
        if keep and before and len(before) == self.max_keep_ckpts:
            outdated = self.keep_ckpt_ids.popleft()
        try:
            save()
        except BaseException:
            if keep:  # a retry finds the old bookkeeping
                self.keep_ckpt_ids = deque(before, self.max_keep_ckpts)
                runner.message_hub.update_info('keep_ckpt_ids', before)
            raise
        if outdated is not None:
            after = list(self.keep_ckpt_ids)
            if after == before[1:]:  # nothing new kept: the id stays
                self.keep_ckpt_ids.appendleft(outdated)
                outdated = None
            elif outdated in after:  # the same step saved again
                outdated = None
        if not is_main_process() or getattr(self, 'last_ckpt', None) == last:
            return
        write_text_atomically(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if outdated is None:
            return
        old = self.file_backend.join_path(self.out_dir,
                                          self.filename_tmpl.format(outdated))
        if self.file_backend.isfile(old):
            self.file_backend.remove(old)
        elif self.file_backend.isdir(old):
            # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(old)
