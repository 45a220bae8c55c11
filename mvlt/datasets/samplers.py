"""A data sampler that can start an epoch in the middle (exact resume)."""
from typing import Iterator, Optional, Sized

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
                f'ResumableSampler: cannot start at index {num_consumed} of '
                f'an epoch of {self.num_samples} samples per rank; the data '
                'set or batch size differs from the checkpoint\'s.')
        self._start_epoch = epoch
        self._start_index = num_consumed

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        if self._start_epoch == self.epoch:
            indices = indices[self._start_index:]
        # The skip holds for one pass only (the resumed epoch).
        self._start_epoch, self._start_index = None, 0
        return iter(indices)
