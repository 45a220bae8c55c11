"""Base class of the mvlt data sets: handling of unreadable samples."""
import logging
import multiprocessing
from multiprocessing.context import get_spawning_popen
from typing import Any, List, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

BAD_SAMPLE_POLICIES = ('raise', 'skip')

#: After this many unreadable samples in a row the data set, not a sample,
#: is broken (wrong data_root, unreadable disk): stop instead of skipping.
MAX_BAD_IN_A_ROW = 50

#: Errors that mean "this sample's data is bad"; their re-raised form drops
#: the library traceback. Anything else keeps its chain (a bug to debug).
_DATA_ERRORS = (OSError, ValueError, KeyError, TypeError, UnicodeError,
                EOFError)

#: Image-loading transforms, each tied to the storage of one kind of data set
#: (``MVLTBaseDataset.IMAGE_LOADER``).
IMAGE_LOADERS = ('LoadImage', 'LoadFashionGenImage')

#: The context whose shared objects any worker start method accepts, see
#: :class:`SharedCounter`.
_SHARING_CONTEXT = multiprocessing.get_context('spawn')


class SharedCounter:
    """An integer shared by a data set and its dataloader worker processes.

    Worker processes inherit the counter, whatever their start method:
    ``fork`` copies it, ``spawn`` and ``forkserver`` pickle the data set while
    starting them and the counter travels as its shared memory and lock. So
    increments made while loading in a worker are visible to the main
    process. Any other copy (``deepcopy``, pickling to a file) gets an
    independent counter with the current value.
    """

    def __init__(self, value: int = 0) -> None:
        # The lock must not come from the fork context (the default on
        # Linux before Python 3.14): multiprocessing refuses to pass such a
        # lock to a spawn / forkserver process. One made in the spawn context
        # can be passed to processes of every start method (fork children
        # inherit it), and ``spawn`` exists on every platform.
        self._shared = _SHARING_CONTEXT.Value('q', value)

    @property
    def value(self) -> int:
        """The current count."""
        return int(self._shared.value)

    def increment(self) -> int:
        """Add one; return the new count."""
        with self._shared.get_lock():
            self._shared.value += 1
            return int(self._shared.value)

    def __reduce__(self):
        if get_spawning_popen() is not None:
            return _rebuild_shared_counter, (self._shared, )
        return SharedCounter, (self.value, )


def _rebuild_shared_counter(shared: Any) -> SharedCounter:
    counter = SharedCounter.__new__(SharedCounter)
    counter._shared = shared
    return counter


class MVLTBaseDataset(BaseDataset):
    """``BaseDataset`` with a policy for samples that cannot be read.

    Args:
        on_bad_sample (str): ``'raise'`` (default): an error while reading or
            transforming sample i is re-raised with the index and file in the
            message. ``'skip'``: the sample is logged (WARNING, with index,
            file and error), counted in :attr:`num_bad_samples` (shared with
            the dataloader workers; ``BadSampleCounterHook`` puts it in the
            training log), and replaced by the next readable sample. After
            ``MAX_BAD_IN_A_ROW`` failures in a row the data set itself is
            taken to be broken and an error is raised.
        **kwargs: ``BaseDataset`` arguments.
    """

    #: The image-loading transform this data set's samples need: a pipeline
    #: with another one (e.g. inherited from another data set's config) is
    #: refused at construction instead of failing on the first sample.
    IMAGE_LOADER = 'LoadImage'

    def __init__(self, *args, on_bad_sample: str = 'raise', **kwargs) -> None:
        if on_bad_sample not in BAD_SAMPLE_POLICIES:
            raise ValueError(f'on_bad_sample must be one of '
                             f'{BAD_SAMPLE_POLICIES}, got {on_bad_sample!r}.')
        self.on_bad_sample = on_bad_sample
        self._bad_samples = SharedCounter()
        super().__init__(*args, **kwargs)
        self._check_image_loader()

    def _check_image_loader(self) -> None:
        """Refuse a pipeline whose image loader belongs to another kind of
        data set (naming both and what to do)."""
        for transform in self.pipeline.transforms:
            name = type(transform).__name__
            if name in IMAGE_LOADERS and name != self.IMAGE_LOADER:
                raise ValueError(
                    f'{type(self).__name__} needs {self.IMAGE_LOADER} in its '
                    f'pipeline but it has {name}: the pipeline was probably '
                    'inherited from a config of another data set. Give the '
                    "dataset's pipeline explicitly (or replace the dataset "
                    'dict with _delete_=True); see configs/_base_/datasets/ '
                    'and docs/custom_data.md.')

    @property
    def num_bad_samples(self) -> int:
        """Samples skipped so far by this data set and its workers."""
        return self._bad_samples.value

    def describe_sample(self, index: int) -> str:
        """Where sample ``index`` comes from, for messages."""
        try:
            info = self.get_data_info(index)
        except Exception:  # the description must never fail
            return f'sample {index}'
        source = info.get('img_path') or info.get('h5_path') or ''
        if source and 'h5_row' in info:
            source = f'{source} row {info["h5_row"]}'
        return f'sample {index}' + (f' ({source})' if source else '')

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        """The samples of a whole batch (the DataLoader's batched fetch).

        :meth:`prefetch` may read the batch's data at once (for example
        consecutive HDF5 rows in one call); each sample then goes through
        :meth:`__getitem__` and its bad-sample policy as usual.
        """
        self.prefetch(indices)
        try:
            return [self[index] for index in indices]
        finally:
            self.prefetch(())

    def prefetch(self, indices: Sequence[int]) -> None:
        """Read what the samples ``indices`` need in one go (no-op here).

        Called with the indices of a batch before its samples are built, and
        with ``()`` afterwards to drop what was read. A failure here must
        leave each sample to be read on its own (so that its error is
        reported, or it is skipped, under ``on_bad_sample``).
        """

    def __getitem__(self, index: int) -> Any:
        if self.on_bad_sample == 'raise':
            try:
                return super().__getitem__(index)
            except Exception as err:
                raise _with_location(err, self.describe_sample(index))
        failures = []
        for attempt in range(min(len(self), MAX_BAD_IN_A_ROW)):
            current = (index + attempt) % len(self)
            try:
                return super().__getitem__(current)
            except Exception as err:
                count = self._bad_samples.increment()
                where = self.describe_sample(current)
                failures.append(where)
                print_log(
                    f'Skipped bad {where}: {type(err).__name__}: '
                    f'{_message(err)} [{count} skipped so far]',
                    logger='current',
                    level=logging.WARNING)
        raise RuntimeError(
            f'{type(self).__name__} ({self.ann_file}): {len(failures)} '
            f'samples in a row failed to load ({failures[0]} ... '
            f'{failures[-1]}); the data set is broken rather than a few '
            'samples: check data_root / data_prefix / ann_file.')


def _message(err: BaseException) -> str:
    """The text of an error (a KeyError's str() adds quotes)."""
    if len(err.args) == 1 and isinstance(err.args[0], str):
        return err.args[0]
    return str(err)


def _with_location(err: Exception, where: str) -> Exception:
    """``err`` with ``where`` in front of its message, to raise."""
    message = _message(err)
    if where in message:
        return err
    text = f'{where}: {message}'
    new = None
    if isinstance(err, (OSError, ValueError, KeyError, TypeError, RuntimeError,
                        IndexError, EOFError)):
        try:  # the same type (e.g. mvlt.image.ImageDecodeError)
            new = type(err)(text)
        except TypeError:  # a subclass with other arguments
            new = None
    if new is None or _message(new) != text:
        new = RuntimeError(f'{where}: {type(err).__name__}: {message}')
    if isinstance(err, _DATA_ERRORS):
        new.__cause__ = None
        new.__suppress_context__ = True
    else:
        new.__cause__ = err
    return new
