"""Weights-only checkpoint loading, clear errors, atomic writes."""
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub

from conftest import NANO_CONFIG, REPO, cfg_options_args, nano_cfg_options
from mvlt.engine.hooks.resume_state_hook import capture_rng_state
from mvlt.utils.checkpoint import (check_state_dict_shapes,
                                   load_checkpoint_file, replace_atomically,
                                   temporary_path, write_text_atomically)


class _RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _training_like_checkpoint() -> dict:
    hub = MessageHub.get_instance('test-checkpoint-types')
    for value in (1.0, 2.5, float('nan')):
        hub.update_scalar('train/loss', value)
    hub.update_scalar('train/lr', np.float32(1e-3))
    hub.update_info('keep_ckpt_ids', [3, 6])
    hub.update_info('best_score', np.float64(0.5))
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return dict(
        meta=dict(
            epoch=1,
            iter=6,
            seed=0,
            cfg='x = 1',
            dataset_meta=dict(categories=('A', 'B'))),
        state_dict=OrderedDict(model.state_dict()),
        message_hub=hub.state_dict(),
        optimizer=optimizer.state_dict(),
        param_schedulers=[dict(last_step=5, base_values=[1e-3])],
        resume_state=dict(
            iter=6,
            rng=[capture_rng_state()],
            sampler=dict(epoch=1, iter=6, iters_per_epoch=4, seed=0)))


def test_weights_only_loads_everything_a_training_checkpoint_holds(tmp_path):
    checkpoint = _training_like_checkpoint()
    path = str(tmp_path / 'iter_6.pth')
    torch.save(checkpoint, path)
    loaded = load_checkpoint_file(path)
    assert torch.equal(loaded['state_dict']['weight'],
                       checkpoint['state_dict']['weight'])
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert buffer.current() != buffer.current()  # NaN survives
    assert list(buffer.data[0][:2]) == [1.0, 2.5]
    assert loaded['message_hub']['runtime_info']['best_score'] == 0.5
    rng = loaded['resume_state']['rng'][0]
    assert torch.equal(rng['torch'],
                       checkpoint['resume_state']['rng'][0]['torch'])
    assert loaded['optimizer']['state'][0]['step'] == 1


def test_code_in_a_checkpoint_is_refused_not_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=_RunsCode(str(marker))), path)
    with pytest.raises(RuntimeError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert path in message and 'refused' in message and 'system' in message
    assert not marker.exists()


@pytest.mark.parametrize('keep', [0, 100, -100])
def test_truncated_or_empty_checkpoint_names_the_file(tmp_path, keep):
    good = str(tmp_path / 'good.pth')
    torch.save(_training_like_checkpoint(), good)
    data = open(good, 'rb').read()
    bad = str(tmp_path / 'bad.pth')
    with open(bad, 'wb') as f:
        f.write(data[:keep] if keep >= 0 else data[:len(data) + keep])
    with pytest.raises(
            RuntimeError,
            match=r'Cannot load checkpoint .*bad\.pth: it is '
            r'truncated or corrupt'):
        load_checkpoint_file(bad)
    with pytest.raises(FileNotFoundError, match='missing.pth does not exist'):
        load_checkpoint_file(str(tmp_path / 'missing.pth'))


def test_shape_check_names_vocabulary_sizes():
    model = nn.Module()
    model.backbone = nn.Module()
    model.backbone.text_embeddings = nn.Module()
    model.backbone.text_embeddings.word_embeddings = nn.Embedding(200, 8)
    model.head = nn.Linear(8, 4)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    check_state_dict_shapes(model, state, 'same.pth')  # no error
    state['backbone.text_embeddings.word_embeddings.weight'] = torch.zeros(
        30522, 8)
    with pytest.raises(
            ValueError,
            match=r'other.pth was trained with a vocabulary of '
            r'30522 word pieces but the model has 200'):
        check_state_dict_shapes(model, state, 'other.pth')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['head.weight'] = torch.zeros(5, 8)
    with pytest.raises(
            ValueError,
            match=r'x.pth does not fit the model: '
            r'head.weight: checkpoint \[5, 8\] vs model \[4, 8\]'):
        check_state_dict_shapes(model, state, 'x.pth')


def test_atomic_writes_leave_no_temporaries(tmp_path):
    path = str(tmp_path / 'last_checkpoint')
    write_text_atomically(path, 'first')
    write_text_atomically(path, 'second')
    assert open(path).read() == 'second'
    assert os.listdir(tmp_path) == ['last_checkpoint']
    target = str(tmp_path / 'file.bin')
    tmp = temporary_path(target)
    assert osp.dirname(tmp) == str(tmp_path) and osp.basename(tmp).startswith(
        '.file.bin.')
    with open(tmp, 'wb') as f:
        f.write(b'data')
    replace_atomically(tmp, target)
    assert not osp.exists(tmp) and open(target, 'rb').read() == b'data'


@pytest.mark.slow
def test_test_tool_refuses_a_code_running_checkpoint(nano_data, tmp_path):
    marker = tmp_path / 'pwned'
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=_RunsCode(str(marker))), evil)
    options = cfg_options_args(nano_cfg_options(nano_data, str(tmp_path)))
    env = dict(
        os.environ, PYTHONPATH=REPO, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, 'tools/test.py', NANO_CONFIG, evil] + options,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f'RuntimeError: Cannot load checkpoint {evil}')
    assert 'refused' in last_line and 'nothing in it was executed' in last_line
    assert not marker.exists()
