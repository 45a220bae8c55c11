"""A full MMEngine Runner train + test cycle and the command-line tools."""
import copy
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.runner import Runner

from conftest import NANO_CONFIG, REPO, cfg_options_args, nano_cfg_options
from mvlt.utils import load_checkpoint_file, register_all_modules

register_all_modules()


@pytest.mark.slow
def test_runner_train_then_test(nano_config, tmp_path):
    cfg = copy.deepcopy(nano_config)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert osp.isfile(tmp_path / 'epoch_2.pth')
    metrics = runner.test()
    for key in ('mig/psnr_whole', 'mig/psnr_masked', 'mig/ssim_whole',
                'mig/ssim_masked'):
        assert key in metrics and metrics[key] == metrics[key]  # not NaN
    assert 0 < metrics['mig/psnr_whole'] < 100


def _run(args, env_extra=None, timeout=600):
    env = dict(
        os.environ,
        PYTHONPATH=REPO,
        HF_HUB_OFFLINE='1',
        PYTHON=sys.executable,
        OMP_NUM_THREADS='1')
    env.update(env_extra or {})
    return subprocess.run(
        args,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout)


@pytest.mark.slow
def test_train_and_test_tools(nano_data, tmp_path):
    options = cfg_options_args(nano_cfg_options(nano_data, str(tmp_path)))
    result = _run([sys.executable, 'tools/train.py', NANO_CONFIG] + options)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = tmp_path / 'epoch_2.pth'
    assert checkpoint.is_file()
    result = _run(
        [sys.executable, 'tools/test.py', NANO_CONFIG,
         str(checkpoint)] + options)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'mig/psnr_whole' in result.stdout + result.stderr


@pytest.mark.slow
def test_two_process_gloo_training_with_dist_train_sh(nano_data, tmp_path):
    options = cfg_options_args(nano_cfg_options(nano_data, str(tmp_path)))
    port = str(29500 + os.getpid() % 1000)
    result = _run(
        ['bash', 'tools/dist_train.sh', NANO_CONFIG, '2'] + options,
        env_extra=dict(PORT=port, CUDA_VISIBLE_DEVICES=''))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert 'Distributed training is not used' not in log
    assert 'backend: gloo' in log or "'backend': 'gloo'" in log
    # Two ranks of 8 samples at batch 8: one iteration per epoch.
    assert 'Epoch(train) [2][1/1]' in log
    state = load_checkpoint_file(str(tmp_path / 'epoch_2.pth'))
    assert state['meta']['iter'] == 2
