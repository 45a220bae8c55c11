"""The test loop of per-sample tasks (recognition, masked image generation)."""
import copy
from typing import Any, Dict, List, Sequence, Union

import torch
from mmengine.dist import get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.runner.amp import autocast
from mmengine.runner.loops import TestLoop
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader

from mvlt.registry import LOOPS
from .retrieval_loop import (build_test_evaluator, check_model_heads,
                             unwrap_model)


def pad_batch(data_batch: Any, size: int) -> Any:
    """Repeat the first sample of a collated batch up to ``size`` samples.

    Works on ``pseudo_collate`` output (dicts of lists); data samples are
    deep-copied so that predictions written into the padding never touch the
    real first sample.
    """
    if isinstance(data_batch, dict):
        return {k: pad_batch(v, size) for k, v in data_batch.items()}
    if isinstance(data_batch, list) and 0 < len(data_batch) < size:
        extra = [
            copy.deepcopy(data_batch[0]) for _ in range(size - len(data_batch))
        ]
        return data_batch + extra
    return data_batch


@LOOPS.register_module()
class MVLTTestLoop(TestLoop):
    """MMEngine's ``TestLoop`` with the checks and habits of mvlt tests.

    * Refuses a test config without an evaluator, a model without the heads
      of ``model.predict_tasks``, and a checkpoint (``load_from``) without
      weights for them (MMEngine loads checkpoints non-strictly, which would
      silently test randomly initialised heads).
    * Pads the last batch of each process to the dataloader's batch size (the
      padding's outputs are dropped): on CPU a sample's outputs are then
      bitwise the same whatever the number of processes.
    * Shows a progress bar on rank 0.

    Args:
        runner, dataloader, evaluator, fp16: As MMEngine's ``TestLoop``.
        show_progress (bool): Progress bar on rank 0.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List, None],
                 fp16: bool = False,
                 show_progress: bool = True) -> None:
        evaluator = build_test_evaluator(runner, evaluator)
        super().__init__(runner, dataloader, evaluator, fp16)
        self.show_progress = show_progress
        self._bar = None

    def run(self) -> dict:
        """Check the heads, then run MMEngine's test loop."""
        model = unwrap_model(self.runner.model)
        check_model_heads(self.runner, model, tuple(model.predict_tasks))
        rank, _ = get_dist_info()
        if self.show_progress and rank == 0:
            self._bar = ProgressBar(len(self.dataloader))
        metrics = super().run()
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar = None
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        """One batch, padded to the full batch size."""
        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch)
        size = self.dataloader.batch_size
        count = len(data_batch['data_samples']) if isinstance(
            data_batch, dict) and 'data_samples' in data_batch else None
        padded = data_batch
        if size and count is not None and count < size:
            padded = pad_batch(data_batch, size)
        with autocast(enabled=self.fp16):
            outputs = self.runner.model.test_step(padded)
        if padded is not data_batch:
            outputs = outputs[:count]
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_test_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
        if self._bar is not None:
            self._bar.update()
