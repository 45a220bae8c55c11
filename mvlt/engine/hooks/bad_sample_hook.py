"""Counting, in the log, the samples a data set skipped as unreadable."""
import logging
from typing import Any, Iterator, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mvlt.registry import HOOKS


def iter_counting_datasets(dataset: Any) -> Iterator[Any]:
    """Data sets with ``num_bad_samples`` inside wrappers (Concat, Repeat)."""
    if dataset is None:
        return
    if hasattr(dataset, 'num_bad_samples'):
        yield dataset
    for child in getattr(dataset, 'datasets', None) or ():
        yield from iter_counting_datasets(child)
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and inner is not dataset:
        yield from iter_counting_datasets(inner)


def count_bad_samples(dataloader: Any) -> int:
    """Samples skipped so far by the data sets of ``dataloader``."""
    dataset = getattr(dataloader, 'dataset', None)
    return sum(d.num_bad_samples for d in iter_counting_datasets(dataset))


@HOOKS.register_module()
class BadSampleCounterHook(Hook):
    """Report samples skipped under ``on_bad_sample='skip'``.

    Each data set counts its skips in a counter shared with its dataloader
    workers (:class:`~mvlt.datasets.base.SharedCounter`), so reading it here
    costs nothing. Once a sample was skipped, ``skipped_samples`` (this
    rank, the whole run, resumes included) appears in every training log
    line; at the end of each epoch and of training the sum over all ranks
    is logged, and the total is kept in the checkpoint's message hub.
    Validation and test skips are logged after their loops.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL) writes the line

    def __init__(self) -> None:
        self._resumed = 0

    def before_train(self, runner) -> None:
        self._resumed = int(runner.message_hub.get_info('skipped_samples', 0))

    def _train_count(self, runner) -> int:
        return self._resumed + count_bad_samples(runner.train_dataloader)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        count = self._train_count(runner)
        if count:
            runner.message_hub.update_scalar('train/skipped_samples', count)
            runner.message_hub.update_info('skipped_samples', count)

    @staticmethod
    def _all_ranks(count: int) -> int:
        if get_world_size() == 1:
            return count
        total = torch.tensor([count], dtype=torch.long)
        all_reduce(total, op='sum')
        return int(total.item())

    def _report(self, count: int, stage: str) -> None:
        total = self._all_ranks(count)
        if total:
            print_log(
                f'{total} bad samples were skipped during {stage} (all '
                'ranks); the warnings above name them.',
                logger='current',
                level=logging.WARNING)

    def after_train_epoch(self, runner) -> None:
        self._report(self._train_count(runner), 'training so far')

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._report(
            count_bad_samples(runner.val_dataloader), 'validation so far')

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._report(
            count_bad_samples(runner.test_dataloader), 'testing so far')
