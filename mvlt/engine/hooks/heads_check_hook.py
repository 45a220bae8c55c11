"""Record which heads a loaded checkpoint holds, for the test loops."""
from typing import Optional

from mmengine.hooks import Hook

from mvlt.registry import HOOKS
from mvlt.utils.checkpoint_loading import CheckpointHeads


@HOOKS.register_module()
class CheckpointHeadsHook(Hook):
    """The heads check of a loaded checkpoint, on the file MMEngine read.

    MMEngine loads ``load_from`` non-strictly, so a test whose checkpoint
    has no weights for a head would silently score with a randomly
    initialised one. ``Runner.load_checkpoint`` calls
    :meth:`after_load_checkpoint` with the checkpoint it read; this hook
    keeps the heads it holds (:class:`mvlt.utils.checkpoint_loading.
    CheckpointHeads`, key names only) in :attr:`loaded`, and the test loops
    check the heads their task needs against it, so the file is read once.
    The message is the one :class:`mvlt.apis.MVLTInferencer` gives.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.loaded: Optional[CheckpointHeads] = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the loaded checkpoint's head names and file name."""
        cfg = getattr(runner, 'cfg', None) or {}
        self.loaded = CheckpointHeads(checkpoint, cfg.get('load_from'))
