"""One rank of a two-process gloo run fails: both exit, naming that rank."""
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import (NANO_CONFIG, REPO, cfg_options_args, nano_cfg_options,
                      write_jsonl_dataset)

#: The collective timeout of the run (env_cfg.dist_cfg.timeout, seconds);
#: the test waits this long plus start-up before calling the run hung.
DIST_TIMEOUT = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_failing_rank_is_named_and_all_ranks_exit(tmp_path):
    data = write_jsonl_dataset(str(tmp_path / 'data'))
    # Unshuffled, rank 1 reads samples 1, 3, 5, ...: sample 3 is garbage.
    bad_image = data['rows'][3]['img_path']
    (tmp_path / 'data' / 'images' / bad_image).write_bytes(b'not an image')
    options = dict(
        nano_cfg_options(data, str(tmp_path / 'work')), **{
            'train_dataloader.sampler.shuffle': 'False',
            'env_cfg.dist_cfg.timeout': str(DIST_TIMEOUT),
        })
    command = [
        sys.executable, 'tools/train.py', NANO_CONFIG, '--launcher', 'pytorch'
    ] + cfg_options_args(options)
    env = dict(
        os.environ,
        PYTHONPATH=REPO,
        HF_HUB_OFFLINE='1',
        OMP_NUM_THREADS='1',
        CUDA_VISIBLE_DEVICES='',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(_free_port()),
        WORLD_SIZE='2')
    start = time.monotonic()
    processes = [
        subprocess.Popen(
            command,
            cwd=REPO,
            env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True) for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=DIST_TIMEOUT + 300) for p in processes]
    print(f'both ranks exited after {time.monotonic() - start:.1f} s')
    stderr = [err for _, err in outputs]
    assert [p.returncode for p in processes] == [1, 1], stderr[0][-2000:]

    # The one decoder's error (a ValueError) names the file and keeps its type.
    cause = 'ImageDecodeError: sample 3 ('
    # Rank 1 names itself and the sample; rank 0 names rank 1 and its error
    # (it learned it from the store, not by waiting for the timeout).
    assert '[rank 1 of 2] this rank failed with ' + cause in stderr[1]
    assert bad_image in stderr[1]
    assert '[rank 0 of 2] stopping because rank 1 failed with ' + cause \
        in stderr[0]
    assert 'timed out' not in stderr[0].lower()
    # Nothing was saved by a half-finished run.
    assert not (tmp_path / 'work' / 'epoch_1.pth').exists()
