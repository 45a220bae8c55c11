"""Refuse a checkpoint whose tensors do not fit the model."""
from typing import Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import find_latest_checkpoint

from mvlt.registry import HOOKS
from mvlt.utils.checkpoint import check_state_dict_shapes
from mvlt.utils.checkpoint_loading import (STRIP_MODULE_PREFIX,
                                           revise_state_dict)


@HOOKS.register_module()
class CheckpointShapeCheckHook(Hook):
    """Compare a loaded checkpoint's tensor shapes with the model's.

    MMEngine's non-strict loading only warns about a tensor of another shape
    and leaves that parameter randomly initialised, which silently ruins an
    evaluation or a fine-tuning. ``Runner.load_checkpoint`` (``load_from``,
    resume, ``tools/test.py``) calls :meth:`after_load_checkpoint` before it
    copies the weights; this hook then raises ``ValueError`` naming the
    file, the keys with both shapes and, for word-piece tables, the two
    vocabulary sizes (:func:`mvlt.utils.checkpoint.check_state_dict_shapes`).

    The hook is not told the file name: it takes the runner config's
    ``load_from``, or for an automatic resume (``resume=True`` without it)
    the file that ``work_dir/last_checkpoint`` names, as MMEngine does.

    Args:
        revise_keys (Sequence[tuple]): ``(pattern, replacement)`` regular
            expressions applied to the checkpoint's keys before comparing;
            the default strips ``module.`` as ``Runner.load_checkpoint``
            does by default.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 revise_keys: Sequence[Tuple[str, str]] = STRIP_MODULE_PREFIX
                 ) -> None:
        self.revise_keys = [tuple(pair) for pair in revise_keys]

    @staticmethod
    def _filename(runner) -> Optional[str]:
        """The file being loaded, from the runner's config, or None."""
        cfg = getattr(runner, 'cfg', None) or {}
        if cfg.get('load_from'):
            return str(cfg['load_from'])
        if cfg.get('resume'):
            return find_latest_checkpoint(runner.work_dir)
        return None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Raise ``ValueError`` when a tensor has another shape than the
        model's parameter or buffer of the same (revised) name."""
        state_dict = checkpoint.get('state_dict', checkpoint)
        if not isinstance(state_dict, dict):
            return
        revised = revise_state_dict(state_dict, self.revise_keys)
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        check_state_dict_shapes(model, revised, self._filename(runner))
