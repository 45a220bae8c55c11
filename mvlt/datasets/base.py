"""Base class of the mvlt data sets: handling of samples that cannot be read."""
import logging
from typing import Any

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

BAD_SAMPLE_POLICIES = ('raise', 'skip')


class MVLTBaseDataset(BaseDataset):
    """``BaseDataset`` with a policy for samples that cannot be read.

    Args:
        on_bad_sample (str): ``'raise'`` (default): an error while reading or
            transforming sample i is re-raised with the index and file in the
            message. ``'skip'``: the sample is logged with its index and file,
            counted in :attr:`num_bad_samples`, and replaced by the next
            readable sample.
        **kwargs: ``BaseDataset`` arguments.
    """

    def __init__(self, *args, on_bad_sample: str = 'raise', **kwargs) -> None:
        if on_bad_sample not in BAD_SAMPLE_POLICIES:
            raise ValueError(f'on_bad_sample must be one of '
                             f'{BAD_SAMPLE_POLICIES}, got {on_bad_sample!r}.')
        self.on_bad_sample = on_bad_sample
        self.num_bad_samples = 0
        super().__init__(*args, **kwargs)

    def describe_sample(self, index: int) -> str:
        """Where sample ``index`` comes from, for messages."""
        try:
            info = self.get_data_info(index)
        except Exception:  # the description must never fail
            return f'sample {index}'
        source = info.get('img_path') or info.get('h5_path') or ''
        return f'sample {index}' + (f' ({source})' if source else '')

    def __getitem__(self, index: int) -> Any:
        if self.on_bad_sample == 'raise':
            try:
                return super().__getitem__(index)
            except Exception as err:
                if str(self.describe_sample(index)) in str(err):
                    raise
                raise type(err)(f'{self.describe_sample(index)}: {err}') \
                    if _reraisable(err) else err
        for attempt in range(len(self)):
            current = (index + attempt) % len(self)
            try:
                return super().__getitem__(current)
            except Exception as err:
                self.num_bad_samples += 1
                print_log(
                    f'Skipped bad {self.describe_sample(current)}: '
                    f'{type(err).__name__}: {err} '
                    f'[{self.num_bad_samples} skipped so far in this '
                    'process]',
                    logger='current',
                    level=logging.WARNING)
        raise RuntimeError(f'Every sample of {type(self).__name__} '
                           f'({self.ann_file}) failed to load.')


def _reraisable(err: Exception) -> bool:
    """Whether ``type(err)(message)`` rebuilds the error faithfully."""
    try:
        type(err)('probe')
    except Exception:
        return False
    return type(err) in (ValueError, TypeError, KeyError, OSError,
                         FileNotFoundError, RuntimeError, IndexError)
