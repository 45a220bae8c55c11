"""A training run killed with SIGKILL and resumed ends with the same weights.
"""
import os
import random
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import (NANO_CONFIG, REPO, cfg_options_args, finish_tool,
                      kill_when, nano_cfg_options, start_tool)
from mvlt.engine.hooks.resume_state_hook import (capture_rng_state,
                                                 restore_rng_state)
from mvlt.utils import load_checkpoint_file

#: 16 samples at batch 4: 4 iterations per epoch, 5 epochs = 20 iterations,
#: an iteration checkpoint every 3 (mid-epoch resumes included).
ITERS_PER_EPOCH, MAX_EPOCHS = 4, 5
MAX_ITERS = ITERS_PER_EPOCH * MAX_EPOCHS
RUN_OPTIONS = {
    'randomness.deterministic': 'True',
    'train_dataloader.batch_size': '4',
    'train_dataloader.sampler.type': 'ResumableSampler',
    'train_cfg.max_epochs': str(MAX_EPOCHS),
    'default_hooks.checkpoint.by_epoch': 'False',
    'default_hooks.checkpoint.interval': '3',
    'default_hooks.checkpoint.max_keep_ckpts': '2',
    'default_hooks.logger.interval': '1',
}
_LOG_LINE = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[(\d+)/(\d+)\]')


def _command(nano_data, work_dir, *extra):
    options = dict(nano_cfg_options(nano_data, str(work_dir)), **RUN_OPTIONS)
    return [sys.executable, 'tools/train.py', NANO_CONFIG, *extra
            ] + cfg_options_args(options)


def _env():
    return dict(
        os.environ,
        PYTHONPATH=REPO,
        HF_HUB_OFFLINE='1',
        OMP_NUM_THREADS='1',
        PYTHONUNBUFFERED='1')


def _train(command):
    result = subprocess.run(
        command, cwd=REPO, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout + result.stderr


def _train_and_kill(command, kill_after: int) -> str:
    """Start training; SIGKILL it once iteration ``kill_after`` is logged."""

    def reached(line: str) -> bool:
        match = _LOG_LINE.search(line)
        if not match:
            return False
        epoch, index, per_epoch = map(int, match.groups())
        return (epoch - 1) * per_epoch + index >= kill_after

    return kill_when(command, _env(), reached)


def _draws(preprocessor):
    generator = preprocessor.generator(torch.device('cpu'))
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(),
            [random.random()
             for _ in range(3)], torch.rand(3, generator=generator).tolist())


def test_rng_state_round_trip(nano_config, tmp_path):
    from mvlt.registry import MODELS
    preprocessor = MODELS.build(nano_config.model.data_preprocessor)
    preprocessor.generator(torch.device('cpu'))
    state = capture_rng_state(preprocessor)
    expected = _draws(preprocessor)
    # Through a weights-only checkpoint file, as a resume does.
    path = str(tmp_path / 'state.pth')
    torch.save(dict(rng=state), path)
    _draws(preprocessor)
    restore_rng_state(load_checkpoint_file(path)['rng'], preprocessor)
    assert _draws(preprocessor) == expected


@pytest.mark.slow
def test_sigkill_then_resume_gives_bitwise_equal_weights(nano_data, tmp_path):
    kill_after = random.Random(os.urandom(8)).randint(4, MAX_ITERS - 3)
    print(f'killing after iteration {kill_after}')

    # The uninterrupted run goes on while the other is killed.
    uninterrupted = start_tool(
        _command(nano_data, tmp_path / 'uninterrupted'), _env())
    interrupted = tmp_path / 'interrupted'
    _train_and_kill(_command(nano_data, interrupted), kill_after)
    finish_tool(uninterrupted)
    last = (interrupted / 'last_checkpoint').read_text()
    resumed_from = int(re.search(r'iter_(\d+)\.pth', last).group(1))
    assert resumed_from <= kill_after

    log = _train(_command(nano_data, interrupted, '--resume'))
    assert f'Auto resumed from the latest checkpoint {last}' in log
    assert f'Restored random states and data order at iteration ' \
           f'{resumed_from}' in log

    expected = load_checkpoint_file(
        str(tmp_path / 'uninterrupted' / f'iter_{MAX_ITERS}.pth'))
    actual = load_checkpoint_file(str(interrupted / f'iter_{MAX_ITERS}.pth'))
    assert actual['meta']['iter'] == MAX_ITERS
    different = [
        key for key, value in expected['state_dict'].items()
        if not torch.equal(value, actual['state_dict'][key])
    ]
    assert not different, f'resumed after {resumed_from}: {different[:5]}'
    for key, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(
                torch.as_tensor(value),
                torch.as_tensor(actual['optimizer']['state'][key][name]))
    # max_keep_ckpts=2 still holds across the kill and the resume.
    kept = sorted(p.name for p in interrupted.glob('iter_*.pth'))
    assert kept == sorted(
        p.name for p in (tmp_path / 'uninterrupted').glob('iter_*.pth'))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_resume_restores_each_rank(nano_data, tmp_path):
    """gloo, 2 ranks x 4 samples x 2 epochs; resume from epoch 1."""
    options = dict(
        nano_cfg_options(nano_data, str(tmp_path)), **{
            'randomness.deterministic': 'True',
            'train_dataloader.batch_size': '4',
            'default_hooks.checkpoint.max_keep_ckpts': '-1',
        })

    def train(*extra):
        command = ['bash', 'tools/dist_train.sh', NANO_CONFIG, '2', *extra
                   ] + cfg_options_args(options)
        env = dict(
            _env(),
            PYTHON=sys.executable,
            CUDA_VISIBLE_DEVICES='',
            PORT=str(_free_port()))
        result = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    train()
    first = load_checkpoint_file(str(tmp_path / 'epoch_1.pth'))
    expected = load_checkpoint_file(str(tmp_path / 'epoch_2.pth'))
    ranks = first['resume_state']['rng']
    assert len(ranks) == 2
    assert not torch.equal(ranks[0]['preprocessor'], ranks[1]['preprocessor'])

    os.remove(tmp_path / 'epoch_2.pth')
    train('--resume', str(tmp_path / 'epoch_1.pth'))
    actual = load_checkpoint_file(str(tmp_path / 'epoch_2.pth'))
    different = [
        key for key, value in expected['state_dict'].items()
        if not torch.equal(value, actual['state_dict'][key])
    ]
    assert not different, different[:5]
