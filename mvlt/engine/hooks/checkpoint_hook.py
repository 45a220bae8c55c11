"""A CheckpointHook whose ``last_checkpoint`` always names a whole file."""
import logging
import os
import os.path as osp
from typing import List

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from mvlt.registry import HOOKS
from mvlt.utils.checkpoint import is_temporary_path, write_text_atomically


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that survives a kill at any moment.

    MMEngine's hook deletes the oldest checkpoint *before* writing the new
    one and rewrites ``last_checkpoint`` in place, so a kill in between can
    leave no loadable checkpoint or an empty ``last_checkpoint``. This hook
    orders the steps so that one always exists:

    1. write the new checkpoint (``MVLTRunner.save_checkpoint``: temporary
       file in the same folder, fsync, rename);
    2. point ``last_checkpoint`` at it (temporary file, fsync, rename);
    3. only then delete the checkpoints beyond ``max_keep_ckpts``.

    Temporary files left by a killed run are deleted in ``before_train``.

    Args: as :class:`mmengine.hooks.CheckpointHook`.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not getattr(runner, 'writes_checkpoints_atomically', False):
            print_log(
                f'{type(runner).__name__} writes checkpoint files in place; '
                "set runner_type='MVLTRunner' (and build the runner with "
                'RUNNERS.build, as tools/train.py does) for atomic writes.',
                logger='current',
                level=logging.WARNING)
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

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        outdated: List[int] = []
        # The id list is updated before saving so that the checkpoint's
        # message hub knows which files to prune after a resume.
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        write_text_atomically(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old_step in outdated:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(old_step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)
