"""Data samplers: exact resume inside an epoch, and batches built from
groups of related samples (in-batch hard negatives for ITC / ITM)."""
from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sized

import torch
from mmengine.dataset import DefaultSampler

from mvlt.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ResumableSampler(DefaultSampler):
    """MMEngine's ``DefaultSampler`` plus a start position inside an epoch.

    The order of an epoch depends only on ``seed + epoch`` (as in
    ``DefaultSampler``), so a run resumed from an iteration checkpoint in the
    middle of epoch ``e`` gets the rest of that epoch's order by skipping
    the indices its ranks had already consumed; ``ResumeStateHook`` calls
    :meth:`set_start` for that. Without it MMEngine restarts the epoch from
    its beginning and the resumed run sees other batches.

    Args:
        dataset (Sized): The data set.
        shuffle (bool): Shuffle each epoch.
        seed (int, optional): Shuffle seed, identical on all ranks.
        round_up (bool): Pad to a multiple of the world size.
    """

    def __init__(self,
                 dataset: Sized,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        super().__init__(dataset, shuffle, seed, round_up)
        self._start_epoch: Optional[int] = None
        self._start_index = 0

    def set_start(self, epoch: int, num_consumed: int) -> None:
        """Make the iteration over ``epoch`` skip its first indices.

        Args:
            epoch (int): The epoch the skip applies to.
            num_consumed (int): Indices of this rank already trained on
                (batches done x per-rank batch size).
        """
        if not 0 <= num_consumed <= self.num_samples:
            raise ValueError(
                f'{type(self).__name__}: cannot start at index '
                f'{num_consumed} of an epoch of {self.num_samples} samples '
                'per rank; the data set or batch size differs from the '
                'checkpoint\'s.')
        self._start_epoch = epoch
        self._start_index = num_consumed

    def rank_indices(self) -> List[int]:
        """This rank's indices of the current epoch, from its beginning
        (``DefaultSampler``'s order; subclasses change the order here)."""
        return list(super().__iter__())

    def __iter__(self) -> Iterator[int]:
        indices = self.rank_indices()
        if self._start_epoch == self.epoch:
            indices = indices[self._start_index:]
        # The skip holds for one pass only (the resumed epoch).
        self._start_epoch, self._start_index = None, 0
        return iter(indices)


@DATA_SAMPLERS.register_module()
class GroupedSampler(ResumableSampler):
    """Batches made of runs of ``group_size`` samples that share a label.

    Each epoch the samples of every group (equal ``group_by`` field, e.g.
    the sub-category) are shuffled and cut into runs of ``group_size``; a
    group's last, short run is filled with its first samples again, so
    every run is whole. The runs are shuffled and dealt to the ranks in
    turn. With a per-rank batch size that is a multiple of ``group_size``
    every batch holds ``batch_size / group_size`` whole runs, so a sample's
    in-batch negatives include ``group_size - 1`` of its own group (by
    sub-category: the same garment type, so more near misses such as the
    same garment and colour in another pattern than a uniform batch holds).
    ITC then has to tell them apart and ``ITCHardNegatives`` can draw them
    for ITM (measured in ``docs/alignment.md``). This is batch construction
    for hard negatives as in mmdetection's group samplers (there by aspect
    ratio); the group label is any field of the data info.

    Resumes exactly like :class:`ResumableSampler` (the order depends only
    on ``seed + epoch``).

    Args:
        dataset (Sized): The data set; ``dataset.get_data_info(i)`` must
            hold ``group_by`` for every sample.
        group_by (str): Data-info field whose equal values form a group
            (``FashionGenDataset``: ``'subcategory_label'``,
            ``'category_label'``).
        group_size (int): Samples per run (>= 1).
        shuffle (bool): Shuffle the groups' members and the runs each
            epoch; without it runs follow the data set's order.
        seed (int, optional): Shuffle seed, identical on all ranks.

    Raises:
        KeyError: A sample's data info lacks ``group_by`` (names the sample).
        ValueError: ``group_size`` < 1.
    """

    def __init__(self,
                 dataset: Sized,
                 group_by: str = 'subcategory_label',
                 group_size: int = 16,
                 shuffle: bool = True,
                 seed: Optional[int] = None) -> None:
        super().__init__(dataset, shuffle, seed, round_up=True)
        if group_size < 1:
            raise ValueError(
                f'GroupedSampler: group_size must be >= 1, got {group_size}.')
        self.group_by = group_by
        self.group_size = int(group_size)
        groups: Dict[object, List[int]] = defaultdict(list)
        for index in range(len(dataset)):
            info = dataset.get_data_info(index)
            if group_by not in info:
                raise KeyError(
                    f'GroupedSampler: sample {index} of '
                    f'{type(dataset).__name__} has no field {group_by!r} '
                    f'(it has {sorted(info)}); set '
                    'train_dataloader.sampler.group_by to one of them.')
            groups[info[group_by]].append(index)
        self.groups = [torch.tensor(m) for _, m in sorted(groups.items())]

    def _runs(self, generator: Optional[torch.Generator]) -> List[List[int]]:
        runs = []
        for members in self.groups:
            if generator is not None:
                members = members[torch.randperm(
                    len(members), generator=generator)]
            members = members.tolist()
            short = -len(members) % self.group_size
            # A group smaller than a run repeats its members as needed.
            members = members + (members * (short // len(members) + 1))[:short]
            runs.extend(members[i:i + self.group_size]
                        for i in range(0, len(members), self.group_size))
        if generator is not None:
            runs = [
                runs[i]
                for i in torch.randperm(len(runs), generator=generator)
            ]
        return runs

    def rank_indices(self) -> List[int]:
        """This rank's indices of the current epoch: every
        ``world_size``-th run from the ``rank``-th, cycled to
        ``num_samples``."""
        generator = None
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
        runs = self._runs(generator)
        mine = runs[self.rank::self.world_size] or runs
        indices = [i for run in mine for i in run]
        repeats = -(-self.num_samples // len(indices))
        return (indices * repeats)[:self.num_samples]
