"""The iteration-based training loop reads the same batches as MMEngine's,
without MMEngine's 2 s pause at every epoch end."""
import mmengine.runner.loops as mmengine_loops
import pytest
import torch
from mmengine.dataset import DefaultSampler
from torch.utils.data import DataLoader

from mvlt.engine.loops import IterBasedTrainLoop, chain_epochs
from mvlt.engine.loops.iter_based_loop import restarts_workers
from mvlt.registry import LOOPS
from mvlt.utils import register_all_modules


def _loader(num_workers: int = 0, persistent: bool = False) -> DataLoader:
    # 10 samples in batches of 4: three batches an epoch, the last short.
    return DataLoader(
        list(range(10)),
        batch_size=4,
        sampler=DefaultSampler(list(range(10)), shuffle=True, seed=3),
        num_workers=num_workers,
        persistent_workers=persistent)


def test_chained_epochs_equal_mmengine_iterator_without_pausing(
        monkeypatch):
    pauses = []
    monkeypatch.setattr(mmengine_loops.time, 'sleep', pauses.append)
    theirs = mmengine_loops._InfiniteDataloaderIterator(_loader())
    expected = [next(theirs).tolist() for _ in range(11)]
    assert pauses == [2, 2, 2]  # MMEngine pauses at each epoch end
    pauses.clear()
    loader = _loader()
    ours = chain_epochs(
        loader, started=mmengine_loops._InfiniteDataloaderIterator(loader))
    assert [next(ours).tolist() for _ in range(11)] == expected
    assert pauses == []
    # Epochs differ (the sampler was told the epoch) and each holds every
    # sample once.
    epochs = [sum(expected[i:i + 3], []) for i in (0, 3, 6)]
    assert epochs[0] != epochs[1] and all(
        sorted(e) == list(range(10)) for e in epochs)
    # Without a started iterator the sequence is the same.
    fresh = chain_epochs(_loader())
    assert [next(fresh).tolist() for _ in range(11)] == expected


def test_empty_loader_is_an_error():
    with pytest.raises(RuntimeError, match='no batch in epoch 0'):
        next(chain_epochs(DataLoader([], batch_size=2)))


def test_mvlt_scope_builds_this_loop():
    register_all_modules()
    assert LOOPS.get('IterBasedTrainLoop') is IterBasedTrainLoop
    assert issubclass(IterBasedTrainLoop,
                      mmengine_loops.IterBasedTrainLoop)


def test_workers_restarted_each_epoch_keep_mmengine_pause():
    assert not restarts_workers(_loader())
    assert not restarts_workers(_loader(num_workers=2, persistent=True))
    assert restarts_workers(_loader(num_workers=2))


def test_tensor_batches_pass_through():
    loader = DataLoader(torch.arange(6), batch_size=3)
    batches = chain_epochs(loader)
    assert [next(batches).tolist() for _ in range(4)] == [[0, 1, 2],
                                                          [3, 4, 5]] * 2
