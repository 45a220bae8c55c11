"""Dataloader workers of every start method (fork, spawn, forkserver) load
the same samples as the main process and share the bad-sample count."""
import os
import shutil
import subprocess
import sys

import h5py
import pytest
import torch
from mmengine.dataset import pseudo_collate

from conftest import NANO_CONFIG, REPO, cfg_options_args, nano_cfg_options
from mvlt.datasets import FashionGenDataset
from mvlt.utils import register_all_modules

#: Rows whose caption is emptied: skipped (and counted) under 'skip'.
BAD_ROWS = (3, 10)
EPOCHS = 2

# More workers than this machine's cores: slower, not wrong.
pytestmark = pytest.mark.filterwarnings(
    'ignore:This DataLoader will create:UserWarning')


@pytest.fixture(scope='module')
def damaged_fashiongen(synthetic_fashiongen, tmp_path_factory) -> dict:
    """The synthetic training split with empty captions in ``BAD_ROWS``."""
    path = str(tmp_path_factory.mktemp('damaged') / 'train.h5')
    shutil.copyfile(synthetic_fashiongen['train'], path)
    with h5py.File(path, 'a') as f:
        for row in BAD_ROWS:
            f['input_description'][row, 0] = b''
    return dict(path=path, vocab=synthetic_fashiongen['vocab'])


def _dataset(data: dict) -> FashionGenDataset:
    register_all_modules()
    return FashionGenDataset(
        ann_file=data['path'],
        pipeline=[
            dict(type='LoadFashionGenImage'),
            dict(type='Tokenize', tokenizer=data['vocab'], max_length=16),
            dict(type='PackMVLTInputs'),
        ],
        on_bad_sample='skip')


def _rows(dataset, **loader_args) -> list:
    """(sample index, image bytes, token ids) of every sample, in order,
    over ``EPOCHS`` passes."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=3, collate_fn=pseudo_collate, **loader_args)
    rows = []
    for _ in range(EPOCHS):
        for batch in loader:
            inputs = batch['inputs']
            for images, ids, sample in zip(inputs['images'],
                                           inputs['input_ids'],
                                           batch['data_samples']):
                rows.append((sample.sample_idx, images.numpy().tobytes(),
                             tuple(ids.tolist())))
    return rows


@pytest.fixture(scope='module')
def reference_rows(damaged_fashiongen) -> list:
    """What the main process loads itself (0 workers)."""
    dataset = _dataset(damaged_fashiongen)
    rows = _rows(dataset, num_workers=0)
    assert dataset.num_bad_samples == EPOCHS * len(BAD_ROWS)
    return rows


def _check_workers(data: dict, reference: list, method: str, num_workers: int,
                   persistent: bool) -> None:
    dataset = _dataset(data)
    rows = _rows(
        dataset,
        num_workers=num_workers,
        persistent_workers=persistent,
        multiprocessing_context=method)
    assert [r[0] for r in rows] == [r[0] for r in reference]
    assert rows == reference
    # Skips made in any worker, in any epoch, reach the main process.
    assert dataset.num_bad_samples == EPOCHS * len(BAD_ROWS)


#: Spawned and forkserver workers import torch and mvlt again (seconds
#: each), so most combinations are slow tests.
METHODS = [
    'fork',
    pytest.param('spawn', marks=pytest.mark.slow),
    pytest.param('forkserver', marks=pytest.mark.slow)
]


@pytest.mark.parametrize('method', METHODS)
def test_two_persistent_workers_of_every_start_method(damaged_fashiongen,
                                                      reference_rows, method):
    _check_workers(damaged_fashiongen, reference_rows, method, 2, True)


@pytest.mark.slow
@pytest.mark.parametrize('method', ['fork', 'spawn', 'forkserver'])
@pytest.mark.parametrize('num_workers,persistent', [(2, False), (4, True)])
def test_more_workers_of_every_start_method(damaged_fashiongen, reference_rows,
                                            method, num_workers, persistent):
    # Non-persistent workers are started (the data set pickled) each epoch.
    _check_workers(damaged_fashiongen, reference_rows, method, num_workers,
                   persistent)


@pytest.mark.slow
def test_tools_train_with_spawned_workers(nano_data, tmp_path):
    options = dict(
        nano_cfg_options(nano_data, str(tmp_path / 'work')), **{
            'train_dataloader.num_workers': '2',
            'train_dataloader.persistent_workers': 'True',
            'train_dataloader.multiprocessing_context': 'spawn',
            'train_cfg.max_epochs': '1',
        })
    result = subprocess.run(
        [sys.executable, 'tools/train.py', NANO_CONFIG] +
        cfg_options_args(options),
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO, HF_HUB_OFFLINE='1'),
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
