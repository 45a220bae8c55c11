"""The test loop of per-sample tasks (recognition, masked image generation)."""
import copy
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import Evaluator
from mmengine.runner.amp import autocast
from mmengine.runner.loops import TestLoop
from torch.utils.data import DataLoader

from mvlt.registry import LOOPS
from .utils import (RankZeroProgress, build_test_evaluator, check_model_heads,
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

    * Predicts the heads of ``tasks`` (default: the model's
      ``predict_tasks``), so that a task config needs no model key (with
      ``'mir'``: masked image generation, see ``MVLT.predict``).

    Args:
        runner, dataloader, evaluator, fp16: As MMEngine's ``TestLoop``.
        tasks (Sequence[str], optional): Heads to predict.
        show_progress (bool): Progress bar on rank 0.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List, None],
                 fp16: bool = False,
                 tasks: Optional[Sequence[str]] = None,
                 show_progress: bool = True) -> None:
        evaluator = build_test_evaluator(runner, evaluator)
        super().__init__(runner, dataloader, evaluator, fp16)
        self.tasks = tuple(tasks) if tasks else None
        self.progress = RankZeroProgress(show_progress)

    def run(self) -> dict:
        """Check the heads, then run MMEngine's test loop."""
        model = unwrap_model(self.runner.model)
        check_model_heads(self.runner, model, self.tasks
                          or tuple(model.predict_tasks))
        self.progress.start(len(self.dataloader))
        metrics = super().run()
        self.progress.finish()
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
        model = unwrap_model(self.runner.model)
        with autocast(enabled=self.fp16):
            data = model.data_preprocessor(padded, False)
            outputs = model.predict(**data, tasks=self.tasks)
        if padded is not data_batch:
            outputs = outputs[:count]
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_test_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
        self.progress.advance()
