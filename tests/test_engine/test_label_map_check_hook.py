"""LabelMapCheckHook: a checkpoint's class names must match the data's."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner import BaseLoop

from mvlt.engine.hooks import LabelMapCheckHook
from mvlt.registry import HOOKS
from mvlt.utils import register_all_modules

NAMES = dict(
    categories=('DRESSES', 'PANTS'),
    subcategories=('LONG DRESSES', 'SHORTS', 'TROUSERS'))


class _Loop(BaseLoop):

    def run(self) -> None:
        pass


class _Dataset(torch.utils.data.Dataset):

    def __init__(self, metainfo: dict) -> None:
        self.metainfo = metainfo

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> int:
        return index


def _runner(test_meta: dict, train_meta: dict = None) -> SimpleNamespace:
    runner = SimpleNamespace(
        _train_loop=dict(type='EpochBasedTrainLoop'), _val_loop=None)
    runner._test_loop = _Loop(runner,
                              torch.utils.data.DataLoader(_Dataset(test_meta)))
    if train_meta is not None:
        runner._train_loop = _Loop(
            runner, torch.utils.data.DataLoader(_Dataset(train_meta)))
    return runner


def _checkpoint(meta: dict) -> dict:
    return dict(meta=dict(dataset_meta=meta), state_dict={})


def test_matching_names_pass():
    hook = LabelMapCheckHook()
    hook.after_load_checkpoint(_runner(dict(NAMES)), _checkpoint(NAMES))
    # Data without class names (e.g. COCO) and checkpoints without
    # dataset_meta are not checked.
    hook.after_load_checkpoint(_runner({}), _checkpoint(NAMES))
    hook.after_load_checkpoint(_runner(dict(NAMES)), dict(meta={}))


def test_shifted_names_are_an_error():
    shifted = dict(
        NAMES, subcategories=('LONG DRESSES', 'SKIRTS', 'SHORTS', 'TROUSERS'))
    hook = LabelMapCheckHook()
    with pytest.raises(
            ValueError,
            match=r"subcategories.*test data set.*id 1 is "
            r"'SHORTS' in the checkpoint but 'SKIRTS' here"):
        hook.after_load_checkpoint(_runner(shifted), _checkpoint(NAMES))
    with pytest.raises(ValueError, match='categories .*train data set'):
        hook.after_load_checkpoint(
            _runner(dict(NAMES), dict(NAMES, categories=('PANTS', ))),
            _checkpoint(NAMES))
    # 'warn' only logs (fine-tuning on other classes).
    LabelMapCheckHook(on_mismatch='warn').after_load_checkpoint(
        _runner(shifted), _checkpoint(NAMES))


def test_registered():
    register_all_modules()
    assert isinstance(
        HOOKS.build(dict(type='LabelMapCheckHook')), LabelMapCheckHook)
    with pytest.raises(ValueError, match='on_mismatch'):
        LabelMapCheckHook(on_mismatch='maybe')
