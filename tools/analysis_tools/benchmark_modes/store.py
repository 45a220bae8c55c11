"""The storage mode of tools/analysis_tools/search_benchmark.py: what opening
a search index's item table and thumbnails costs at N items.

Writes a synthetic item table of N items (``items.sqlite``, tiny JPEG
thumbnails in packs: :mod:`mvlt.apis.item_store`) and, for comparison, the
format-1 ``items.jsonl`` the index used to read whole at start-up; then, each
in a fresh process, opens it as the search service does and reports the
seconds and the growth of resident memory, and the cost of reading an item
and a thumbnail. With ``ann_dir`` (a ``--synthetic N --work-dir DIR`` run of
the same N) the faiss index and embeddings file are opened too, as
:class:`mvlt.apis.SearchIndex` does.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Optional

import numpy as np

from mvlt.apis.item_store import ItemStore
from mvlt.apis.item_store_writer import write_item_store
from mvlt.visualization import encode_rgb_image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def synthetic_items(num: int, photos: int = 3):
    """N items of N / photos products with 8 x 8 JPEG thumbnails."""
    thumb = encode_rgb_image(np.full((8, 8, 3), 128, np.uint8), '.jpg')
    for row in range(num):
        product = row // photos
        yield dict(
            product_id=f'P{product:08d}',
            caption=f'product {product} in colour {product % 97} with '
            f'pattern {product % 13}',
            category=f'CATEGORY{product % 48}'), thumb


def open_and_measure(work_dir: str, ann_dir: Optional[str],
                     how: str) -> dict:
    """Open the table (``how``: ``'store'`` or ``'jsonl'``) in this process
    and measure; run in a fresh process by :func:`run_store`."""
    import random
    with open(osp.join(work_dir, 'store.json')) as f:
        info = json.load(f)
    num = info['num_items']
    before = _rss_mb()
    start = time.perf_counter()
    if how == 'jsonl':  # what format 1 did at start-up
        with open(osp.join(work_dir, 'items.jsonl'), encoding='utf-8') as f:
            items = [json.loads(line) for line in f if line.strip()]
    else:
        items = ItemStore(work_dir, info['store'], num, 'rebuild')
    opened = time.perf_counter() - start
    out = dict(open_s=round(opened, 5), rss_growth_mb=round(
        _rss_mb() - before, 1))
    if ann_dir and how == 'store':
        from mvlt.apis.ann_files import open_embeddings, open_faiss_index
        begin = time.perf_counter()
        dim = np.load(
            osp.join(ann_dir, 'images.npy'), mmap_mode='r').shape[1]
        # Kept referenced until measured (as the service keeps them).
        ann = (open_faiss_index(
            osp.join(ann_dir, 'images.faiss'), num, dim, 'x'),
               open_embeddings(
                   osp.join(ann_dir, 'images.npy'), num, dim, 'x'))
        out['ann_open_s'] = round(time.perf_counter() - begin, 3)
        out['startup_s'] = round(opened + out['ann_open_s'], 3)
        out['rss_growth_with_ann_mb'] = round(_rss_mb() - before, 1)
        out['ann_ntotal'] = ann[0].ntotal
    rows = random.Random(0).sample(range(num), min(num, 1000))
    begin = time.perf_counter()
    for row in rows:
        items[row]
    out['item_us'] = round(1e6 * (time.perf_counter() - begin) / len(rows),
                           1)
    if how == 'store':
        begin = time.perf_counter()
        for row in rows:
            items.thumbnail(row)
        out['thumbnail_us'] = round(
            1e6 * (time.perf_counter() - begin) / len(rows), 1)
    return out


def run_store(num: int,
              work_dir: str,
              ann_dir: Optional[str] = None) -> dict:
    """Write the synthetic tables of ``num`` items in ``work_dir`` and open
    them, each in a fresh process; return the figures."""
    os.makedirs(work_dir, exist_ok=True)
    start = time.perf_counter()
    store = write_item_store(work_dir, synthetic_items(num))
    written = time.perf_counter() - start
    with open(osp.join(work_dir, 'items.jsonl'), 'w') as f:
        for row, (item, _) in enumerate(synthetic_items(num)):
            f.write(json.dumps(dict(row=row, **item, thumbnail=f'thumbs/'
                                    f'{row:06d}.jpg')) + '\n')
    with open(osp.join(work_dir, 'store.json'), 'w') as f:
        json.dump(dict(num_items=num, store=store), f)
    result = dict(
        num_items=num,
        write_s=round(written, 2),
        table_bytes=osp.getsize(osp.join(work_dir, 'items.sqlite')),
        jsonl_bytes=osp.getsize(osp.join(work_dir, 'items.jsonl')))
    for how in ('store', 'jsonl'):
        code = ('import json, sys; sys.path[:0] = [sys.argv[1], '
                'sys.argv[1] + "/tools/analysis_tools"]; '
                'from benchmark_modes.store import open_and_measure; '
                'print(json.dumps(open_and_measure(*sys.argv[2:5])))')
        done = subprocess.run(
            [sys.executable, '-c', code, REPO, work_dir, ann_dir or '', how],
            check=True,
            capture_output=True,
            text=True)
        result[how] = json.loads(done.stdout.strip().splitlines()[-1])
    result['load_average'] = os.getloadavg()
    return result
