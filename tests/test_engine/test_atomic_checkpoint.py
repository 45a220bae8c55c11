"""A kill while a checkpoint is written leaves the previous one in charge."""
import os
import os.path as osp
import subprocess
import sys
import textwrap
from collections import deque

import pytest
import torch
from mmengine.runner.checkpoint import find_latest_checkpoint

from conftest import (NANO_CONFIG, REPO, cfg_options_args, kill_when,
                      nano_cfg_options)
from mvlt.engine.hooks import AtomicCheckpointHook
from mvlt.utils import load_checkpoint_file

#: Imported through the config's custom_imports: the write of iter_6 stops
#: half-way (flushed to disk) and hangs until the test kills the process.
SLOW_WRITE_PLUGIN = '''
import os
import time

from mmengine.fileio.backends import LocalBackend

_put = LocalBackend.put


def _half_write_then_hang(self, obj, filepath):
    if '.iter_6.pth.' in os.path.basename(str(filepath)):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            os.fsync(f.fileno())
        print('HALF-WRITTEN', filepath, flush=True)
        time.sleep(3600)
    return _put(self, obj, filepath)


LocalBackend.put = _half_write_then_hang
'''


@pytest.mark.slow
def test_kill_during_checkpoint_write_keeps_previous_one(nano_data, tmp_path):
    plugin_dir = tmp_path / 'plugin'
    plugin_dir.mkdir()
    (plugin_dir / 'slow_checkpoint_write.py').write_text(SLOW_WRITE_PLUGIN)
    config = tmp_path / 'slow_write_config.py'
    config.write_text(
        textwrap.dedent(f'''
        _base_ = [{NANO_CONFIG!r}]
        custom_imports = dict(imports=['slow_checkpoint_write'])
        '''))
    work_dir = tmp_path / 'work'
    options = dict(
        nano_cfg_options(nano_data, str(work_dir)), **{
            'train_dataloader.batch_size': '4',
            'train_dataloader.sampler.type': 'ResumableSampler',
            'train_cfg.max_epochs': '3',
            'default_hooks.checkpoint.by_epoch': 'False',
            'default_hooks.checkpoint.interval': '3',
            'default_hooks.checkpoint.max_keep_ckpts': '1',
        })
    env = dict(
        os.environ,
        HF_HUB_OFFLINE='1',
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join([REPO, str(plugin_dir)]))
    command = [sys.executable, 'tools/train.py', str(config)]
    kill_when(command + cfg_options_args(options), env,
              lambda line: line.startswith('HALF-WRITTEN'))

    # The torn file is a hidden temporary; iter_6.pth was never created and
    # max_keep_ckpts=1 did not delete iter_3.pth before its successor existed.
    temporaries = [n for n in os.listdir(work_dir) if n.endswith('.tmp')]
    assert len(temporaries) == 1 and temporaries[0].startswith('.iter_6.pth.')
    assert not (work_dir / 'iter_6.pth').exists()
    last = (work_dir / 'last_checkpoint').read_text()
    assert last == str(work_dir / 'iter_3.pth')
    assert load_checkpoint_file(last)['meta']['iter'] == 3
    torn = str(work_dir / temporaries[0])
    with pytest.raises(
            RuntimeError,
            match=f'Cannot load checkpoint {torn}: it is '
            'truncated or corrupt'):
        load_checkpoint_file(torn)

    # Resuming (without the plugin) starts from iter_3, removes the torn
    # temporary and finishes.
    env['PYTHONPATH'] = REPO
    result = subprocess.run(
        [sys.executable, 'tools/train.py', NANO_CONFIG, '--resume'] +
        cfg_options_args(options),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert f'Auto resumed from the latest checkpoint {last}' in log
    assert f'Removed {temporaries[0]}' in log
    assert sorted(os.listdir(work_dir)) == sorted(
        n for n in os.listdir(work_dir) if not n.endswith('.tmp'))
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir /
                                                             'iter_12.pth')
    assert [n for n in os.listdir(work_dir)
            if n.endswith('.pth')] == ['iter_12.pth']


class _FailingRunner:
    """Just what AtomicCheckpointHook touches; saving raises (disk full)."""

    def __init__(self, work_dir: str) -> None:
        from mmengine.logging import MessageHub, MMLogger
        self.work_dir = work_dir
        self.message_hub = MessageHub.get_instance('atomic-hook-test')
        self.saved = []
        self.fail = False
        # What CheckpointHook.after_train_iter reads.
        self.iter, self.epoch, self.max_iters = 0, 0, 1000
        self.logger = MMLogger.get_instance('atomic-hook-test')

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        if self.fail:
            raise OSError(28, 'No space left on device')
        open(osp.join(out_dir, filename), 'w').close()
        self.saved.append(filename)


def _save_at(hook, runner, step: int) -> None:
    """The end of iteration ``step`` (1-based), through the public hook."""
    runner.iter = step - 1
    hook.after_train_iter(runner, 0)


def test_failed_save_keeps_last_checkpoint_and_old_files(tmp_path):
    runner = _FailingRunner(str(tmp_path))
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=1, by_epoch=False)
    hook.out_dir = str(tmp_path)
    from mmengine.fileio import get_file_backend
    hook.file_backend = get_file_backend(str(tmp_path))
    hook.keep_ckpt_ids = deque(maxlen=1)
    _save_at(hook, runner, 1)
    _save_at(hook, runner, 2)
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth', 'last_checkpoint']
    # MMEngine's bookkeeping, which a resume reads, is kept.
    assert runner.message_hub.get_info('keep_ckpt_ids') == [2]
    runner.fail = True
    with pytest.raises(OSError, match='No space left'):
        _save_at(hook, runner, 3)
    # MMEngine's hook would already have deleted iter_2.pth here.
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth', 'last_checkpoint']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path /
                                                             'iter_2.pth')
    assert list(hook.keep_ckpt_ids) == [2]
    assert runner.message_hub.get_info('keep_ckpt_ids') == [2]
    # A later successful save prunes iter_2.pth only after writing iter_4.
    runner.fail = False
    _save_at(hook, runner, 4)
    assert sorted(os.listdir(tmp_path)) == ['iter_4.pth', 'last_checkpoint']
    assert runner.message_hub.get_info('keep_ckpt_ids') == [4]


def test_iterations_without_a_save_change_nothing(tmp_path):
    """Every iteration runs the hook; only those that save prune, and only
    after the new file and last_checkpoint are written."""
    runner = _FailingRunner(str(tmp_path))
    runner.message_hub = type(runner.message_hub).get_instance(
        'atomic-hook-interval-test')
    hook = AtomicCheckpointHook(interval=2, max_keep_ckpts=2, by_epoch=False)
    hook.out_dir = str(tmp_path)
    from mmengine.fileio import get_file_backend
    hook.file_backend = get_file_backend(str(tmp_path))
    hook.keep_ckpt_ids = deque(maxlen=2)
    for step in range(1, 6):
        _save_at(hook, runner, step)
    assert runner.saved == ['iter_2.pth', 'iter_4.pth']
    assert list(hook.keep_ckpt_ids) == [2, 4]
    assert sorted(os.listdir(tmp_path)) == [
        'iter_2.pth', 'iter_4.pth', 'last_checkpoint'
    ]
    _save_at(hook, runner, 6)
    assert sorted(os.listdir(tmp_path)) == [
        'iter_4.pth', 'iter_6.pth', 'last_checkpoint'
    ]
    assert runner.message_hub.get_info('keep_ckpt_ids') == [4, 6]
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path /
                                                             'iter_6.pth')


@pytest.mark.parametrize('content', ['', 'missing'])
def test_torn_last_checkpoint_is_repaired_before_resume(tmp_path, content):
    """A kill during MMEngine's in-place rewrite of last_checkpoint leaves
    it empty (or naming nothing); before_run points it at the newest whole
    checkpoint before MMEngine's auto-resume reads it."""
    for step in (3, 6, 9):
        torch.save(dict(meta=dict(iter=step)), tmp_path / f'iter_{step}.pth')
    whole = (tmp_path / 'iter_9.pth').read_bytes()
    # iter_12 was cut short (a plain Runner writes in place).
    (tmp_path / 'iter_12.pth').write_bytes(whole[:len(whole) // 2])
    last = tmp_path / 'last_checkpoint'
    last.write_text(str(tmp_path / 'iter_1') if content else '')
    runner = _FailingRunner(str(tmp_path))
    AtomicCheckpointHook(interval=1, by_epoch=False).before_run(runner)
    assert last.read_text() == str(tmp_path / 'iter_9.pth')
    assert find_latest_checkpoint(str(tmp_path)) == str(tmp_path /
                                                        'iter_9.pth')
    # A whole last_checkpoint is left as it is.
    last.write_text(str(tmp_path / 'iter_3.pth'))
    AtomicCheckpointHook(interval=1, by_epoch=False).before_run(runner)
    assert last.read_text() == str(tmp_path / 'iter_3.pth')
    assert [n for n in os.listdir(tmp_path) if n.endswith('.tmp')] == []


def test_torn_last_checkpoint_without_checkpoints_is_removed(tmp_path):
    (tmp_path / 'last_checkpoint').write_text('')
    AtomicCheckpointHook(
        interval=1, by_epoch=False).before_run(_FailingRunner(str(tmp_path)))
    assert os.listdir(tmp_path) == []
