"""GroupedSampler: batches of whole same-label runs, reproducible, exact
resume, disjoint runs per rank."""
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import REPO
from mvlt.datasets import GroupedSampler, ResumableSampler
from mvlt.registry import DATA_SAMPLERS


class _Labelled:
    """A data set of ``len(labels)`` samples whose data info holds a
    label."""

    def __init__(self, labels):
        self.labels = list(labels)

    def __len__(self):
        return len(self.labels)

    def get_data_info(self, index):
        return dict(sample_idx=index, subcategory_label=self.labels[index])


def _batches(indices, size):
    return [indices[i:i + size] for i in range(0, len(indices), size)]


def test_batches_hold_whole_runs_of_one_label():
    # Uneven groups: 37, 21 and 6 samples (the last smaller than a run).
    labels = [0] * 37 + [1] * 21 + [2] * 6
    data = _Labelled(labels)
    sampler = GroupedSampler(data, group_size=8, seed=3)
    indices = list(sampler)
    assert len(indices) == len(sampler) == len(data)
    for run in _batches(indices, 8)[:-1]:
        assert len({labels[i] for i in run}) == 1, run
    # Every batch of 16 is two whole runs.
    for batch in _batches(indices, 16)[:-1]:
        assert all(
            len({labels[i]
                 for i in run}) == 1 for run in _batches(batch, 8))
    # Short groups are filled from their own members, so most samples of
    # the epoch are distinct and all come from the data set.
    assert set(indices) <= set(range(len(data)))
    assert len(set(indices)) >= 0.85 * len(data)


def test_an_even_data_set_is_a_permutation_and_runs_mix_labels():
    labels = [i % 4 for i in range(64)]
    sampler = GroupedSampler(_Labelled(labels), group_size=4, seed=0)
    indices = list(sampler)
    assert sorted(indices) == list(range(64))
    run_labels = [labels[run[0]] for run in _batches(indices, 4)]
    # The runs' order is shuffled, not group after group.
    assert run_labels != sorted(run_labels)


def test_order_is_reproducible_per_seed_and_epoch():
    data = _Labelled([i % 5 for i in range(100)])
    first = GroupedSampler(data, group_size=4, seed=7)
    again = GroupedSampler(data, group_size=4, seed=7)
    other = GroupedSampler(data, group_size=4, seed=8)
    assert list(first) == list(again)
    assert list(first) != list(other)
    first.set_epoch(1)
    assert list(first) != list(again)
    again.set_epoch(1)
    assert list(first) == list(again)


def test_resume_inside_an_epoch_continues_the_same_order():
    data = _Labelled([i % 3 for i in range(60)])
    whole = GroupedSampler(data, group_size=4, seed=1)
    whole.set_epoch(2)
    full = list(whole)
    resumed = GroupedSampler(data, group_size=4, seed=1)
    resumed.set_epoch(2)
    resumed.set_start(2, 24)
    assert list(resumed) == full[24:]
    # The skip holds for that pass only.
    assert list(resumed) == full
    with pytest.raises(ValueError, match='GroupedSampler: cannot start'):
        resumed.set_start(2, 61)


def test_ranks_get_disjoint_whole_runs():
    labels = [i % 4 for i in range(128)]
    data = _Labelled(labels)
    per_rank = []
    for rank in range(2):
        sampler = GroupedSampler(data, group_size=8, seed=0)
        # What get_dist_info() returns under a 2-process group.
        sampler.rank, sampler.world_size = rank, 2
        sampler.num_samples = len(data) // 2
        sampler.total_size = len(data)
        indices = list(sampler)
        assert len(indices) == 64
        for run in _batches(indices, 8):
            assert len({labels[i] for i in run}) == 1
        per_rank.append(set(indices))
    assert not per_rank[0] & per_rank[1]
    assert per_rank[0] | per_rank[1] == set(range(128))


def test_missing_field_and_bad_size_fail_early():
    data = _Labelled([0, 1, 2])
    with pytest.raises(KeyError, match="no field 'colour'"):
        GroupedSampler(data, group_by='colour', group_size=2, seed=0)
    with pytest.raises(ValueError, match='group_size must be >= 1'):
        GroupedSampler(data, group_size=0, seed=0)


def test_grouped_demo_config_builds_the_grouped_sampler():
    cfg = Config.fromfile(
        osp.join(REPO,
                 'configs/mvlt/synthetic/pretrain_synthetic_demo_grouped.py'))
    spec = cfg.train_dataloader.sampler
    assert spec.type == 'GroupedSampler'
    # Runs must tile the batch, or a batch would split a run.
    assert cfg.train_dataloader.batch_size % spec.group_size == 0
    labels = [i % 8 for i in range(256)]
    sampler = DATA_SAMPLERS.build(
        dict(spec, dataset=_Labelled(labels), seed=0))
    assert isinstance(sampler, ResumableSampler)
    for batch in _batches(list(sampler), cfg.train_dataloader.batch_size):
        assert all(
            len({labels[i]
                 for i in run}) == 1
            for run in _batches(batch, spec.group_size))
