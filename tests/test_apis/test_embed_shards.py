"""Sharded index builds: a build killed with SIGKILL part-way resumes to
the index an uninterrupted build writes (same vectors, same rows), without
re-embedding finished shards; two processes build the same index as one."""
import copy
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from search_test_utils import NANO_ITC, save_model

from conftest import REPO, load_tool
from mvlt.apis.item_store import ItemStore

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')

REPEATS = 6  # 16 images x 6 = 96 rows: 24 shards of 4


@pytest.fixture(scope='module')
def setup(nano_config, nano_data, tmp_path_factory):
    """The nano model with an ITC head and a 96-row gallery of the nano
    images (each repeat a product of its own)."""
    root = str(tmp_path_factory.mktemp('shards'))
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = NANO_ITC
    config, checkpoint = save_model(cfg, root, 'nano_itc')
    gallery = osp.join(root, 'gallery.jsonl')
    images = osp.join(nano_data['root'], 'images')
    with open(gallery, 'w') as f:
        for repeat in range(REPEATS):
            for row in nano_data['rows']:
                f.write(json.dumps(
                    dict(row, product_id=f"{row['product_id']}-{repeat}"))
                    + '\n')
    return dict(config=config, checkpoint=checkpoint, gallery=gallery,
                images=images, root=root)


def _args(setup: dict, out: str) -> list:
    return [setup['config'], setup['checkpoint'], '--gallery',
            setup['gallery'], '--image-root', setup['images'], '--out', out,
            '--batch-size', '2', '--shard-size', '4', '--rank-queries', '0']


def _command(setup: dict, out: str) -> list:
    return [sys.executable,
            osp.join(REPO, 'tools', 'misc', 'build_search_index.py')
            ] + _args(setup, out)


def _same_index(out: str, reference: str) -> None:
    for name in ('images.npy', 'captions.npy'):
        np.testing.assert_array_equal(
            np.load(osp.join(out, name)), np.load(osp.join(reference, name)))
    tables = []
    for path in (out, reference):
        with open(osp.join(path, 'meta.json')) as f:
            meta = json.load(f)
        tables.append(
            ItemStore(path, meta['store'], meta['num_items'], 'rebuild'))
    assert list(tables[0]) == list(tables[1])
    assert [tables[0].thumbnail(r) for r in range(len(tables[0]))] == \
        [tables[1].thumbnail(r) for r in range(len(tables[1]))]


@pytest.mark.slow
def test_killed_build_resumes_to_the_same_index(setup):
    tool = load_tool('misc/build_search_index.py')
    reference = osp.join(setup['root'], 'reference')
    tool.main(_args(setup, reference))
    out = osp.join(setup['root'], 'killed')
    shards = osp.join(out, 'shards')
    process = subprocess.Popen(
        _command(setup, out), cwd=REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    count = 0
    while process.poll() is None:
        if osp.isdir(shards):
            count = sum(n.endswith('.npz') for n in os.listdir(shards))
        if count >= 3:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert process.wait() == -signal.SIGKILL, 'the build ended before the kill'
    assert not osp.exists(osp.join(out, 'meta.json'))
    finished = {
        n: os.stat(osp.join(shards, n)).st_mtime_ns
        for n in os.listdir(shards) if n.endswith('.npz')
    }
    assert 3 <= len(finished) < 24
    tool.main(_args(setup, out))
    for name, mtime in finished.items():  # never embedded again
        assert os.stat(osp.join(shards, name)).st_mtime_ns == mtime
    _same_index(out, reference)


@pytest.mark.slow
def test_two_processes_build_the_same_index(setup):
    reference = osp.join(setup['root'], 'reference')
    if not osp.exists(osp.join(reference, 'meta.json')):
        load_tool('misc/build_search_index.py').main(_args(setup, reference))
    out = osp.join(setup['root'], 'two')
    processes = [
        subprocess.Popen(
            _command(setup, out),
            cwd=REPO,
            env=dict(os.environ, RANK=str(rank), WORLD_SIZE='2'),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True) for rank in (0, 1)
    ]
    logs = [p.communicate()[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], logs
    assert 'process 0 assembles' in logs[1]
    _same_index(out, reference)
