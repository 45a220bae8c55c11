"""A NaN loss is named with its iteration; skipped and counted, or stops."""
import copy
import os

import pytest
import torch

from mvlt.engine import MVLTRunner, NonFiniteSkipOptimWrapper
from mvlt.utils import load_checkpoint_file, register_all_modules

register_all_modules()


def _runner(nano_config, work_dir, max_consecutive, optim_type):
    cfg = copy.deepcopy(nano_config)
    cfg.work_dir = str(work_dir)
    cfg.train_dataloader.batch_size = 4  # 4 iterations per epoch
    cfg.train_cfg.max_epochs = 2
    cfg.optim_wrapper.type = optim_type
    cfg.default_hooks.checkpoint = dict(
        type='AtomicCheckpointHook',
        interval=1,
        by_epoch=False,
        max_keep_ckpts=-1)
    cfg.default_hooks.nonfinite_guard.max_consecutive = max_consecutive
    return MVLTRunner.from_cfg(cfg)


def _poison_mir_loss(runner, iterations):
    """Make loss_mir NaN at the given (1-based) training iterations."""
    head = runner.model.heads['mir']
    original = head.loss

    def loss(feats, batch):
        losses = original(feats, batch)
        if runner.iter + 1 in iterations:
            losses['loss_mir'] = losses['loss_mir'] * float('nan')
        return losses

    head.loss = loss


def _all_finite(path):
    state = load_checkpoint_file(path)['state_dict']
    return all(
        bool(torch.isfinite(v).all()) for v in state.values()
        if v.is_floating_point())


@pytest.mark.slow
def test_nan_stops_before_anything_is_saved(nano_config, tmp_path):
    runner = _runner(nano_config, tmp_path, 1, 'OptimWrapper')
    _poison_mir_loss(runner, {3})
    with pytest.raises(FloatingPointError) as info:
        runner.train()
    message = str(info.value)
    assert 'Non-finite loss_mir=nan, loss=nan at' in message
    assert 'iteration 3 (epoch 1)' in message
    assert f'last checkpoint {tmp_path / "iter_2.pth"} is unaffected' in \
        message
    assert 'Batch starts with:' in message and '.png' in message
    saved = sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth'))
    assert saved == ['iter_1.pth', 'iter_2.pth']
    assert _all_finite(str(tmp_path / 'iter_2.pth'))


@pytest.mark.slow
def test_isolated_nan_is_skipped_and_counted(nano_config, tmp_path):
    runner = _runner(nano_config, tmp_path, 3, 'NonFiniteSkipOptimWrapper')
    _poison_mir_loss(runner, {3, 6, 7})
    runner.train()
    assert isinstance(runner.optim_wrapper, NonFiniteSkipOptimWrapper)
    assert runner.optim_wrapper.skipped_steps == 3
    assert runner.message_hub.get_info('nonfinite_steps') == 3
    assert runner.message_hub.get_scalar(
        'train/nonfinite_steps').current() == 3
    checkpoint = load_checkpoint_file(str(tmp_path / 'iter_8.pth'))
    assert checkpoint['message_hub']['runtime_info']['nonfinite_steps'] == 3
    assert _all_finite(str(tmp_path / 'iter_8.pth'))
    # The skipped step left the weights as they were.
    before = load_checkpoint_file(str(tmp_path / 'iter_2.pth'))['state_dict']
    after = load_checkpoint_file(str(tmp_path / 'iter_3.pth'))['state_dict']
    assert all(
        torch.equal(before[k], after[k]) for k in before
        if not k.endswith(('running_mean', 'running_var',
                           'num_batches_tracked')))
    log = open(runner.logger.handlers[-1].baseFilename).read()
    assert 'Non-finite loss_mir=nan, loss=nan at iteration 3 (epoch 1); ' \
        'the update was skipped (1 in a row, 1 in total)' in log
    assert 'nonfinite_steps: 3' in log


@pytest.mark.slow
def test_consecutive_nans_stop_the_run(nano_config, tmp_path):
    runner = _runner(nano_config, tmp_path, 2, 'NonFiniteSkipOptimWrapper')
    _poison_mir_loss(runner, {5, 6})
    with pytest.raises(
            FloatingPointError,
            match=r'loss_mir=nan, loss=nan at iteration 6 '
            r'\(epoch 2\): 2 bad steps in a row '
            r'\(max_consecutive=2\)'):
        runner.train()
    assert not (tmp_path / 'iter_6.pth').exists()
    assert _all_finite(str(tmp_path / 'iter_5.pth'))
