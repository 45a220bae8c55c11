"""Refuse a checkpoint whose class names differ from the data's."""
import logging
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop

from mvlt.registry import HOOKS
from mvlt.utils.checkpoint_loading import label_map_mismatch


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

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Raise (or log) when a built data set's class names differ from
        the checkpoint's (:func:`mvlt.utils.checkpoint_loading.
        label_map_mismatch`, the check :class:`mvlt.apis.MVLTInferencer`
        runs too)."""
        for loop_name, dataset in self._built_datasets(runner):
            message = label_map_mismatch(
                checkpoint, dataset.metainfo,
                f'the {loop_name} data set ({type(dataset).__name__})',
                self.keys)
            if message is None:
                continue
            if self.on_mismatch == 'error':
                raise ValueError(message)
            print_log(message, logger='current', level=logging.WARNING)
