"""--amp: bf16 autocast on the CPU through AutocastOptimWrapper."""
import glob
import json
import math
import os
import sys

import pytest
import torch
from mmengine.config import Config

from conftest import (NANO_CONFIG, cfg_options_args, finish_tool,
                      nano_cfg_options, start_tool)
from mvlt.utils.config import amp_precision, enable_amp

#: bf16 keeps 8 bits of mantissa (relative rounding 2^-8 = 0.4 %). Over the
#: nano model's 4 steps the logged losses were measured 1e-4 (relative) from
#: fp32's (22.8605 vs 22.8592 ... 22.2212 vs 22.2195); 1 % is the tolerance.
LOSS_RTOL = 0.01


def _start(options, work_dir, *extra):
    args = [sys.executable, 'tools/train.py', NANO_CONFIG, *extra
            ] + cfg_options_args(dict(options, work_dir=str(work_dir)))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    return start_tool(args, env)


def _finish(process, work_dir):
    result = finish_tool(process)
    (scalars, ) = glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    with open(scalars) as f:
        rows = [json.loads(line) for line in f]
    return result.stdout + result.stderr, [
        r['loss'] for r in rows if 'loss' in r
    ]


def test_enable_amp_picks_the_wrapper_for_the_device():
    cfg = Config(dict(optim_wrapper=dict(type='NonFiniteSkipOptimWrapper')))
    assert enable_amp(cfg, 'cpu') == 'bfloat16'
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    with pytest.raises(RuntimeError, match='mps'):
        amp_precision('mps')
    cfg = Config(dict(optim_wrapper=dict(type='ZeroRedundancyOptimizer')))
    with pytest.raises(ValueError, match='ZeroRedundancyOptimizer'):
        enable_amp(cfg, 'cpu')


def test_autocast_wrapper_runs_the_forward_in_bf16():
    from mmengine.optim import OptimWrapper  # noqa: F401

    from mvlt.engine.optim_wrappers import AutocastOptimWrapper
    model = torch.nn.Linear(4, 4)
    wrapper = AutocastOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        device_type='cpu')
    with wrapper.optim_context(model):
        out = model(torch.ones(2, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().sum())
    assert model.weight.dtype == torch.float32
    with pytest.raises(ValueError, match='AmpOptimWrapper'):
        AutocastOptimWrapper(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            dtype='float16')


@pytest.mark.slow
def test_train_tool_amp_on_cpu_matches_fp32(nano_data, tmp_path):
    options = nano_cfg_options(nano_data)
    amp_run = _start(options, tmp_path / 'amp', '--amp')
    fp32_run = _start(options, tmp_path / 'fp32')  # at the same time
    log, amp_losses = _finish(amp_run, tmp_path / 'amp')
    assert '--amp: training in bfloat16' in log
    _, fp32_losses = _finish(fp32_run, tmp_path / 'fp32')
    assert len(amp_losses) == len(fp32_losses) >= 4
    assert all(math.isfinite(x) for x in amp_losses)
    for amp, fp32 in zip(amp_losses, fp32_losses):
        assert abs(amp - fp32) <= LOSS_RTOL * abs(fp32), (amp_losses,
                                                          fp32_losses)
    # The two runs differ (bf16 did compute something in bf16).
    assert amp_losses != fp32_losses
