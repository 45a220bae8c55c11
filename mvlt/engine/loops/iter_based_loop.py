"""MMEngine's iteration-based training loop without its pause between
epochs where no loader workers are restarted."""
from typing import Any, Iterator, Optional

from mmengine.runner import IterBasedTrainLoop as MMEngineIterBasedTrainLoop
from torch.utils.data import DataLoader

from mvlt.registry import LOOPS


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler (or its batch sampler's) the epoch, where it
    has ``set_epoch``, as MMEngine's loops do before each epoch."""
    sampler = getattr(loader, 'sampler', None)
    if not hasattr(sampler, 'set_epoch'):
        sampler = getattr(getattr(loader, 'batch_sampler', None), 'sampler',
                          None)
    if hasattr(sampler, 'set_epoch'):
        sampler.set_epoch(epoch)


def restarts_workers(loader: DataLoader) -> bool:
    """Whether a new epoch of ``loader`` starts new worker processes (some
    workers, not persistent)."""
    return getattr(loader, 'num_workers', 0) > 0 and not getattr(
        loader, 'persistent_workers', False)


def chain_epochs(loader: DataLoader,
                 started: Optional[Iterator[Any]] = None) -> Iterator[Any]:
    """The batches of ``loader``, epoch after epoch, without end.

    Before epoch e > 0 the sampler gets ``set_epoch(e)`` and the loader is
    iterated anew, exactly as MMEngine's ``_InfiniteDataloaderIterator``
    does, so the batches are the same ones in the same order.

    Args:
        loader (DataLoader): A loader of a map-style data set (its length
            is the number of batches of an epoch).
        started (Iterator, optional): An iterator already started on epoch 0
            of ``loader`` (MMEngine's loop makes one when it is built): the
            first epoch's ``len(loader)`` batches are taken from it, so the
            loader is not started twice (its workers would prefetch twice).

    Raises:
        RuntimeError: An epoch of ``loader`` gave no batch (an empty data
            set, or fewer samples than one batch with ``drop_last``).
    """
    epoch = 0
    if started is not None:
        for _ in range(len(loader)):
            yield next(started)
        epoch = 1
        set_loader_epoch(loader, epoch)
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise RuntimeError(
                f'The training data loader gave no batch in epoch {epoch}: '
                'check train_dataloader.dataset (is it empty?) and its '
                'batch_size / drop_last.')
        epoch += 1
        set_loader_epoch(loader, epoch)


@LOOPS.register_module(name='IterBasedTrainLoop')
class IterBasedTrainLoop(MMEngineIterBasedTrainLoop):
    """MMEngine's ``IterBasedTrainLoop``, registered under the same name in
    the ``mvlt`` scope, that does not pause between epochs.

    MMEngine's loop restarts the data loader at the end of every epoch after
    ``time.sleep(2)`` ("prevent possible deadlock during epoch transition")
    and a warning. On a small data set that pause is most of the run: the
    guide's test pre-trains 120 iterations over 32 samples in batches of 16,
    60 epochs, 2 minutes of which were sleep (tests/test_tools/
    test_custom_data_guide.py); a shop fine-tuning 2,000 products in
    batches of 32 on a GPU pauses 2 s every 63 steps. Here the loop reads
    the loader through :func:`chain_epochs` (same batches, same order, the
    sampler's ``set_epoch`` called at the same points), so the epoch end is
    never seen by MMEngine's iterator. Where a new epoch restarts worker
    processes (``num_workers > 0`` without ``persistent_workers``), the case
    the pause guards, MMEngine's iterator and its pause are kept. Resuming
    skips the trained batches through the same iterator, as MMEngine's does.
    """

    def __init__(self, runner, dataloader, max_iters: int,
                 **kwargs) -> None:
        super().__init__(runner, dataloader, max_iters, **kwargs)
        try:
            batches = len(self.dataloader)
        except TypeError:  # an iterable data set: epochs of unknown length
            batches = 0
        if batches and not restarts_workers(self.dataloader):
            self.dataloader_iterator = chain_epochs(
                self.dataloader, started=self.dataloader_iterator)
