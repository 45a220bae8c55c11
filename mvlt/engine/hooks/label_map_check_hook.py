"""Refuse a checkpoint whose class names differ from the data's."""
import logging
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop

from mvlt.registry import HOOKS


@HOOKS.register_module()
class LabelMapCheckHook(Hook):
    """Compare a loaded checkpoint's class names with the built data sets.

    MMEngine stores the training split's ``metainfo`` in every checkpoint as
    ``meta.dataset_meta``. A category head trained with one list of names
    gives wrong answers, silently, on a split whose ids were made from a
    different list (a shifted id is still a valid id). After a checkpoint is
    loaded this hook compares, for each key in ``keys``, the checkpoint's
    names with those of every data set the runner has built (train, val,
    test); keys that either side lacks or leaves empty are skipped.

    Args:
        keys (Sequence[str]): Metainfo keys holding class-name lists.
        on_mismatch (str): ``'error'`` (default) raises ``ValueError``
            naming the key, the loop and the first differing id;
            ``'warn'`` only logs it (e.g. fine-tuning on other classes with
            re-initialised heads).
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 keys: Sequence[str] = ('categories', 'subcategories'),
                 on_mismatch: str = 'error') -> None:
        if on_mismatch not in ('error', 'warn'):
            raise ValueError("on_mismatch must be 'error' or 'warn', got "
                             f'{on_mismatch!r}.')
        self.keys = tuple(keys)
        self.on_mismatch = on_mismatch

    @staticmethod
    def _built_datasets(runner) -> list:
        """(loop name, data set) of the loops the runner has built."""
        found = []
        for name in ('train', 'val', 'test'):
            loop = getattr(runner, f'_{name}_loop', None)
            # Unbuilt loops are config dicts; only built ones own a loader.
            if isinstance(loop, BaseLoop):
                dataset = getattr(loop.dataloader, 'dataset', None)
                if dataset is not None and hasattr(dataset, 'metainfo'):
                    found.append((name, dataset))
        return found

    @staticmethod
    def _first_difference(saved: tuple, current: tuple) -> str:
        for index, (a, b) in enumerate(zip(saved, current)):
            if a != b:
                return f'id {index} is {a!r} in the checkpoint but {b!r} here'
        return (f'the checkpoint has {len(saved)} names, the data set '
                f'{len(current)}')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta: Optional[dict] = (checkpoint or {}).get('meta') or {}
        saved_meta = meta.get('dataset_meta') or {}
        if not saved_meta:
            return
        for loop_name, dataset in self._built_datasets(runner):
            current_meta = dataset.metainfo
            for key in self.keys:
                saved = tuple(saved_meta.get(key) or ())
                current = tuple(current_meta.get(key) or ())
                if not saved or not current or saved == current:
                    continue
                message = (
                    f'The checkpoint being loaded was trained with {key} '
                    f'that differ from those of the {loop_name} data set '
                    f'({type(dataset).__name__}): '
                    f'{self._first_difference(saved, current)}. Class ids '
                    'would be silently shifted. Build the split\'s label map '
                    'from the training split (label_map_from=<training '
                    f'file>, or metainfo=dict({key}=[...]) with the '
                    'checkpoint\'s meta.dataset_meta lists).')
                if self.on_mismatch == 'error':
                    raise ValueError(message)
                print_log(message, logger='current', level=logging.WARNING)
