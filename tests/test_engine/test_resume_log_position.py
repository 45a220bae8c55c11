"""After a resume in the middle of an epoch the text log labels each
iteration with its position in the epoch, as an uninterrupted run does."""
import copy
import os.path as osp
import re

import pytest

from mvlt.engine import MVLTRunner, ResumeAwareLogProcessor
from mvlt.utils import register_all_modules

#: Epoch(train)  [2][3/6]  (MMEngine right-aligns the numbers).
_LINE = re.compile(r'Epoch\(train\)\s*\[\s*(\d+)\]\[\s*(\d+)/(\d+)\]')


def _run(nano_config, work_dir: str, name: str, resume_from=None) -> list:
    """Train the nano model (16 samples at batch 3: 6 iterations per epoch,
    2 epochs, an iteration checkpoint every 4); the (epoch, position,
    iterations per epoch) of every training log line."""
    cfg = copy.deepcopy(nano_config)
    cfg.work_dir = work_dir
    cfg.experiment_name = name  # its own logger and log file
    cfg.train_dataloader.batch_size = 3
    cfg.train_dataloader.sampler = dict(type='ResumableSampler', shuffle=True)
    cfg.train_cfg.max_epochs = 2
    cfg.default_hooks.checkpoint.update(
        by_epoch=False, interval=4, max_keep_ckpts=-1)
    cfg.default_hooks.logger.interval = 1
    if resume_from:
        cfg.resume, cfg.load_from = True, resume_from
    runner = MVLTRunner.from_cfg(cfg)
    assert isinstance(runner.log_processor, ResumeAwareLogProcessor)
    runner.train()
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    if resume_from:
        assert 'Restored random states and data order at iteration 8' in log
    return [tuple(map(int, m.groups())) for m in _LINE.finditer(log)]


@pytest.mark.slow
def test_resumed_epoch_is_logged_at_its_true_position(nano_config, tmp_path):
    register_all_modules()
    uninterrupted = _run(nano_config, str(tmp_path / 'a'), 'uninterrupted')
    assert uninterrupted == [(e, i, 6) for e in (1, 2) for i in range(1, 7)]
    # Iteration 8 is the 2nd of epoch 2: the resumed run trains 9-12.
    resumed = _run(nano_config, str(tmp_path / 'b'), 'resumed',
                   str(tmp_path / 'a' / 'iter_8.pth'))
    assert resumed == [(2, 3, 6), (2, 4, 6), (2, 5, 6), (2, 6, 6)]
    assert resumed == uninterrupted[8:]
