"""Helpers of the catalogue-search tests (not a test module)."""
import contextlib
import copy
import os
import os.path as osp
import socket
import subprocess
import sys
import time
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import pytest
import torch
from mmengine.config import Config

from conftest import (NANO_ITC, REPO, load_tool,  # noqa: F401
                      save_model_checkpoint)
from mvlt.apis import CatalogueSearch, MVLTInferencer, SearchIndex

#: The demo model (configs/_base_/models/mvlt_synthetic-demo.py) with an ITC
#: head as wide as its T^4 / V^4 (256), so that identity projections exist.
DEMO_ITC = dict(
    type='ITCHead', visual_channels=256, text_channels=256, embed_dim=256)
DEMO_RETRIEVAL = osp.join(REPO, 'configs', 'mvlt', 'synthetic',
                          'retrieval_synthetic_zeroshot.py')


#: The search service's command line.
SEARCH_APP = osp.join(REPO, 'tools', 'demo', 'search_app.py')


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _accepts_connections(port: int) -> None:
    socket.create_connection(('127.0.0.1', port), timeout=5).close()


@contextlib.contextmanager
def running_search_app(index_dir: str,
                       root: str,
                       *args: str,
                       ready: Callable[[int], None] = _accepts_connections,
                       deadline_s: Optional[float] = None) -> Iterator[int]:
    """``tools/demo/search_app.py INDEX_DIR --port PORT *args`` as a user
    starts it (uploads in ``root/uploads``, its output in
    ``root/server.log``); yields PORT once ``ready(PORT)`` stops raising
    ``OSError``, and stops the server afterwards.

    Fails the test with the server's log when it exits first (or, with
    ``deadline_s``, does not get ready within that many seconds).
    """
    port = free_port()
    log = open(osp.join(root, 'server.log'), 'w')
    env = dict(os.environ, GRADIO_TEMP_DIR=osp.join(root, 'uploads'))
    process = subprocess.Popen(
        [sys.executable, SEARCH_APP, index_dir, '--port',
         str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env)
    started = time.monotonic()
    while True:
        try:
            ready(port)
            break
        except OSError:
            late = deadline_s is not None and \
                time.monotonic() - started > deadline_s
            if process.poll() is not None or late:
                process.kill()
                with open(log.name) as f:
                    pytest.fail(f'The search app did not start:\n{f.read()}')
            time.sleep(0.5)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def save_model(cfg: Config, out_dir: str, name: str, seed: int = 0) -> tuple:
    """Dump ``cfg`` and a seeded random-weight checkpoint of its model;
    return (config path, checkpoint path)."""
    checkpoint = save_model_checkpoint(cfg.model,
                                       osp.join(out_dir, f'{name}.pth'), seed)
    config = osp.join(out_dir, f'{name}.py')
    cfg.dump(config)
    return config, checkpoint


def fit_itc_projections(config: str, checkpoint: str,
                        images: Sequence[np.ndarray], captions: Sequence[str],
                        products: Sequence[str]) -> None:
    """Rewrite ``checkpoint`` so that its ITC head embeds every image of a
    product and that product's caption to the same one-hot vector.

    A stand-in for a trained ITC head that takes no training time: with
    identity projections the head's embeddings are the L2-normalised pooled
    features f; a linear map A with A f = e_p (least squares, exact for
    fewer items than channels) then gives normalise(A |f| f) = e_p. The
    encoder and the ITM head keep their random weights.
    """
    inferencer = MVLTInferencer(config, checkpoint)
    head = inferencer.model.heads.itc
    with torch.no_grad():
        for proj in (head.visual_proj, head.text_proj):
            if proj.weight.shape[0] != proj.weight.shape[1]:
                raise ValueError('fit_itc_projections needs embed_dim equal '
                                 'to the ITC head input widths.')
            proj.weight.copy_(torch.eye(proj.weight.shape[0]))
            proj.bias.zero_()
    names = sorted(set(products))
    dim = head.visual_proj.weight.shape[0]
    if len(names) > dim:
        raise ValueError(f'{len(names)} products need embed_dim >= that.')
    targets = np.eye(dim)[[names.index(p) for p in products]]
    distinct = dict(zip(captions, targets))
    image_feats = inferencer.embed_images(list(images)).astype(np.float64)
    text_feats = inferencer.embed_captions(list(distinct)).astype(np.float64)
    for proj, feats, goal in ((head.visual_proj, image_feats, targets),
                              (head.text_proj, text_feats,
                               np.stack(list(distinct.values())))):
        solution = np.linalg.lstsq(feats, goal, rcond=None)[0]
        with torch.no_grad():
            proj.weight.copy_(torch.from_numpy(solution.T).float())
    torch.save(
        dict(state_dict=inferencer.model.state_dict(), meta={}), checkpoint)


def build_nano_index(nano_config: Config, nano_data: dict, root: str) -> dict:
    """The nano model with a random ITC head and its index of the nano
    gallery (16 images of 8 products), built by the tool in ``root``.

    Returns:
        dict: ``config``, ``checkpoint``, ``gallery``, ``images``, ``out``
        (the index), ``meta``, ``search`` (a CatalogueSearch), ``paths``
        (the images) and ``cfg``.
    """
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = NANO_ITC
    config, checkpoint = save_model(cfg, root, 'nano_itc')
    images = osp.join(nano_data['root'], 'images')
    gallery = osp.join(nano_data['root'], 'test.jsonl')
    out = osp.join(root, 'index')
    tool = load_tool('misc/build_search_index.py')
    meta = tool.main([
        config, checkpoint, '--gallery', gallery, '--image-root', images,
        '--out', out, '--batch-size', '16'
    ])
    index = SearchIndex(out, batch_size=16)
    paths = [osp.join(images, row['img_path']) for row in nano_data['rows']]
    return dict(
        config=config,
        checkpoint=checkpoint,
        gallery=gallery,
        images=images,
        out=out,
        meta=meta,
        search=CatalogueSearch(index),
        paths=paths,
        cfg=cfg)
