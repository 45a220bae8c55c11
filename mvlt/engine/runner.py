"""MMEngine's Runner with crash-safe checkpoint files and checked loading."""
import os.path as osp
import re
from typing import Callable, List, Optional, Tuple, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from mvlt.registry import MODELS, RUNNERS
from mvlt.utils.checkpoint import (check_state_dict_shapes, replace_atomically,
                                   temporary_path)


@RUNNERS.register_module()
class MVLTRunner(Runner):
    """``Runner`` whose checkpoint files are written atomically.

    * :meth:`save_checkpoint` (called by every checkpoint hook) writes a
      local checkpoint to a hidden temporary file in the same folder, fsyncs
      it and renames it over the final name, so a kill at any moment leaves
      either no file or a complete one under that name. Non-local back-ends
      (``s3://`` ...) are written as MMEngine does.
    * :meth:`load_checkpoint` refuses a checkpoint whose tensors have other
      shapes than the model's (MMEngine would only warn and keep random
      weights for them), naming the file, the keys and, for word-piece
      tables, the two vocabulary sizes.
    * The model is built through mvlt's ``MODELS`` registry so that a
      misspelt ``model.type`` gets a "did you mean" hint.

    Select it with ``runner_type = 'MVLTRunner'`` (``default_runtime.py``);
    ``tools/train.py`` and ``tools/test.py`` build ``RUNNERS.build(cfg)``.
    """

    #: Read by :class:`AtomicCheckpointHook`.
    writes_checkpoints_atomically = True

    def build_model(self, model: Union[nn.Module, dict]) -> nn.Module:
        """Build the model from its config with mvlt's registry."""
        if isinstance(model, dict):
            return MODELS.build(model)
        return super().build_model(model)

    @master_only
    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """Save a checkpoint; local files via temp file + fsync + rename.

        Args: as :meth:`mmengine.runner.Runner.save_checkpoint`.
        """
        kwargs = dict(
            file_client_args=file_client_args,
            save_optimizer=save_optimizer,
            save_param_scheduler=save_param_scheduler,
            meta=meta,
            by_epoch=by_epoch,
            backend_args=backend_args)
        if file_client_args is not None or not isinstance(
                get_file_backend(out_dir, backend_args=backend_args),
                LocalBackend):
            super().save_checkpoint(out_dir, filename, **kwargs)
            return
        path = osp.join(out_dir, filename)
        tmp_path = temporary_path(path)
        super().save_checkpoint(out_dir, osp.basename(tmp_path), **kwargs)
        replace_atomically(tmp_path, path)

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: List[Tuple[str, str]] = [(r'^module.', '')
                                                              ]) -> dict:
        """Load ``filename`` into the model after checking tensor shapes.

        Args: as :meth:`mmengine.runner.Runner.load_checkpoint`.

        Raises:
            ValueError: A tensor of the checkpoint has another shape than the
                model's parameter of the same name.
        """
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        state_dict = checkpoint.get('state_dict', checkpoint)
        revised = {}
        for key, value in state_dict.items():
            for pattern, replacement in revise_keys:
                key = re.sub(pattern, replacement, key)
            revised[key] = value
        check_state_dict_shapes(model, revised, filename)
        checkpoint = _load_checkpoint_to_model(
            model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint


def build_runner(cfg: Config) -> Runner:
    """``RUNNERS.build(cfg)`` when the config names a ``runner_type`` (such
    as ``'MVLTRunner'``), else MMEngine's ``Runner.from_cfg``."""
    if cfg.get('runner_type'):
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
