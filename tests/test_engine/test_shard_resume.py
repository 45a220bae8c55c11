"""Training on tar shards killed in mid-epoch and resumed reads the rest of
the epoch exactly: the same samples in the same order as an uninterrupted
run (ResumableSampler + ResumeStateHook, unchanged, over ShardDataset)."""
import json
import os
import random
import re
import subprocess
import sys

import pytest
from test_resume import _env, _train_and_kill

from conftest import (REPO, finish_tool, load_tool, start_tool,
                      write_jsonl_dataset)

SHARDS_CONFIG = os.path.join(REPO, 'tests', 'configs',
                             'mvlt_nano_cpu_shards.py')
#: 16 samples in shards of 3 (the last holds 1) at batch 4: 4 iterations an
#: epoch, 3 epochs; a checkpoint every 3 iterations (mid-epoch ones).
MAX_EPOCHS, ITERS_PER_EPOCH = 3, 4
RECORDER = '''
import json, os.path as osp
from mmengine.hooks import Hook
from mvlt.registry import HOOKS


@HOOKS.register_module()
class RecordSamplesHook(Hook):
    """Append each iteration's sample names to WORK_DIR/samples.jsonl."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        names = [s.metainfo['img_path'] for s in data_batch['data_samples']]
        with open(osp.join(runner.work_dir, 'samples.jsonl'), 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter, names=names)) + '\\n')
'''


def _shards(tmp_path):
    data = write_jsonl_dataset(str(tmp_path / 'jsonl'))
    converter = load_tool('dataset_converters/jsonl_to_shards.py')
    from mvlt.datasets.shard_writer import write_shards
    root = tmp_path / 'shards'
    for split in ('train', 'test'):
        samples = converter.read_jsonl(
            os.path.join(data['root'], f'{split}.jsonl'),
            os.path.join(data['root'], 'images'))
        write_shards(samples, str(root / split), max_samples=3)
    return str(root) + '/', data['vocab']


def _command(tmp_path, root, vocab, work_dir, *extra):
    (tmp_path / 'record_samples.py').write_text(RECORDER)
    config = tmp_path / 'config.py'
    config.write_text(f'_base_ = [{SHARDS_CONFIG!r}]\n'
                      "custom_imports = dict(imports=['record_samples'], "
                      'allow_failed_imports=False)\n'
                      "custom_hooks = [dict(type='RecordSamplesHook')]\n")
    options = {
        'train_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'model.data_preprocessor.tokenizer.vocab_file': vocab,
        'work_dir': str(work_dir),
        'train_dataloader.batch_size': '4',
        'train_cfg.max_epochs': str(MAX_EPOCHS),
        'default_hooks.checkpoint.by_epoch': 'False',
        'default_hooks.checkpoint.interval': '3',
        'default_hooks.logger.interval': '1',
    }
    return [
        sys.executable, 'tools/train.py',
        str(config), *extra, '--cfg-options'
    ] + [f'{k}={v}' for k, v in options.items()]


def _read(work_dir) -> dict:
    """iteration -> sample names (a resumed run's entries replace those of
    iterations the killed run had done after its last checkpoint)."""
    order = {}
    with open(work_dir / 'samples.jsonl') as f:
        for line in f:
            row = json.loads(line)
            order[row['iter']] = row['names']
    return order


@pytest.mark.slow
def test_killed_mid_epoch_and_resumed_reads_the_same_samples(tmp_path):
    root, vocab = _shards(tmp_path)
    full, cut = tmp_path / 'uninterrupted', tmp_path / 'interrupted'
    # (_command writes the config files: both before either run starts.)
    commands = [_command(tmp_path, root, vocab, d) for d in (full, cut)]
    # The uninterrupted run goes on while the other is killed.
    uninterrupted = start_tool(commands[0], _env())
    kill_after = random.Random(os.urandom(8)).randint(4, 7)  # epoch 2
    print(f'killing after iteration {kill_after}')
    _train_and_kill(commands[1], kill_after)
    finish_tool(uninterrupted)
    expected = _read(full)
    # (runner.iter counts from 0 in after_train_iter)
    assert sorted(expected) == list(range(MAX_EPOCHS * ITERS_PER_EPOCH))
    for epoch in range(MAX_EPOCHS):  # every sample once per epoch
        names = [
            n for i in range(epoch * ITERS_PER_EPOCH, (epoch + 1) *
                             ITERS_PER_EPOCH) for n in expected[i]
        ]
        assert len(names) == len(set(names)) == 16

    resumed_from = int(
        re.search(r'iter_(\d+)\.pth',
                  (cut / 'last_checkpoint').read_text()).group(1))
    assert resumed_from % ITERS_PER_EPOCH != 0  # in the middle of an epoch
    result = subprocess.run(
        _command(tmp_path, root, vocab, cut, '--resume'),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Restored random states and data order at iteration ' \
        f'{resumed_from}' in result.stdout + result.stderr
    assert _read(cut) == expected
