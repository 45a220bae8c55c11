"""Embedding a gallery in shards: resumable after a crash, shareable by
several processes.

The gallery's rows are cut into shards of ``shard_size`` rows. Each shard
is read, thumbnailed and embedded on its own and written as it finishes
(``shards/NNNNNN.npz``: embeddings, item rows and JPEG thumbnails, written
under a temporary name and renamed, so a killed process never leaves a
half-written shard). A build that finds the
shards of the same plan (checkpoint and gallery content hashes, shard size,
thumbnail size, mode) skips them: a build killed part-way resumes where it
stopped, and never re-embeds a finished shard. Process ``rank`` of
``world_size`` takes shards ``rank, rank + world_size, ...`` (``RANK`` /
``WORLD_SIZE`` as ``tools/dist_run.sh`` sets them); process 0 then waits
for the others' shards and assembles the index. Shards of one size always
hold the same rows and are embedded in the same chunks, so a resumed or
shared build gives the same vectors as an uninterrupted one.
"""
import json
import os
import os.path as osp
import shutil
import time
from typing import Callable, List, Optional, Tuple

import numpy as np

SHARD_DIR = 'shards'
PLAN_FILE = 'plan.json'
#: Rows per shard by default: a few minutes of embedding on a CPU, so a
#: crash loses little and a shard file stays a few MB.
DEFAULT_SHARD_SIZE = 1024


def _shard_path(out_dir: str, shard: int) -> str:
    return osp.join(out_dir, SHARD_DIR, f'{shard:06d}.npz')


def _write_json_atomic(path: str, data: dict) -> None:
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=2)
    os.replace(path + '.tmp', path)


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def prepare_plan(out_dir: str, plan: dict, thumb_dir: str, rank: int,
                 wait_s: float) -> None:
    """Keep the shards of the same ``plan``, else start over (process 0);
    other processes wait for process 0 to write the plan.

    Raises:
        TimeoutError: No matching plan appeared within ``wait_s`` seconds.
    """
    path = osp.join(out_dir, SHARD_DIR, PLAN_FILE)
    if rank == 0:
        if _read_json(path) != plan:
            shutil.rmtree(osp.join(out_dir, SHARD_DIR), ignore_errors=True)
            shutil.rmtree(osp.join(out_dir, thumb_dir), ignore_errors=True)
        os.makedirs(osp.join(out_dir, SHARD_DIR), exist_ok=True)
        os.makedirs(osp.join(out_dir, thumb_dir), exist_ok=True)
        _write_json_atomic(path, plan)
        return
    until = time.monotonic() + wait_s
    while _read_json(path) != plan:
        if time.monotonic() > until:
            raise TimeoutError(f'Process {rank}: no build plan from process 0'
                               f' in {path} after {wait_s:.0f} s.')
        time.sleep(0.5)


def embed_in_shards(
    out_dir: str,
    num_items: int,
    shard_size: int,
    embed_rows: Callable[[range], Tuple[Optional[np.ndarray], List[dict],
                                        List[bytes]]],
    rank: int = 0,
    world_size: int = 1,
    progress: Optional[Callable[[int, int], None]] = None,
    wait_s: float = 24 * 3600
) -> Optional[List[str]]:
    """Embed this process's missing shards; on process 0, wait for all and
    return their files in row order (read each with :func:`read_shard`).

    Args:
        out_dir: The index folder (shards go to ``shards/``; call
            :func:`prepare_plan` first).
        num_items: Gallery rows.
        shard_size: Rows per shard.
        embed_rows: ``rows -> (embeddings (len(rows), D) or None, items,
            JPEG thumbnails)``.
        rank / world_size: This process and how many share the build.
        progress: Called with (rows done, including skipped shards, total).
        wait_s: How long process 0 waits for a missing shard of another
            process before giving up.

    Returns:
        list | None: On process 0 the shard files; None elsewhere.

    Raises:
        TimeoutError: Another process's shard did not appear in ``wait_s``
            seconds (rerun: finished shards are kept).
    """
    shards = range(0, (num_items + shard_size - 1) // shard_size)
    done = 0
    for shard in shards[rank::world_size]:
        rows = range(shard * shard_size,
                     min((shard + 1) * shard_size, num_items))
        path = _shard_path(out_dir, shard)
        if not osp.exists(path):
            embeds, items, thumbs = embed_rows(rows)
            with open(path + '.tmp', 'wb') as f:
                np.savez(
                    f,
                    embeds=np.zeros((0, 0), np.float32)
                    if embeds is None else embeds,
                    items=np.array(json.dumps(items, ensure_ascii=False)),
                    thumbs=np.frombuffer(b''.join(thumbs), np.uint8),
                    thumb_sizes=np.array([len(t) for t in thumbs], np.int64))
            os.replace(path + '.tmp', path)
        done += len(rows)
        if progress is not None:
            progress(done, num_items)
    if rank != 0:
        return None
    paths = []
    for shard in shards:
        path = _shard_path(out_dir, shard)
        until = time.monotonic() + wait_s
        while not osp.exists(path):
            if time.monotonic() > until:
                raise TimeoutError(
                    f'{path} (shard {shard}) was not written in {wait_s:.0f}'
                    ' s by the process that owns it; run the build again to '
                    'resume (finished shards are kept).')
            time.sleep(0.5)
        paths.append(path)
    return paths


def read_shard(path: str) -> Tuple[Optional[np.ndarray], List[dict],
                                   List[bytes]]:
    """A shard written by :func:`embed_in_shards`: (embeddings or None,
    items, JPEG thumbnails)."""
    with np.load(path) as data:
        embeds = data['embeds'] if data['embeds'].size else None
        items = json.loads(str(data['items']))
        blob = data['thumbs'].tobytes()
        ends = np.cumsum(data['thumb_sizes'])
    thumbs = [blob[a:b] for a, b in zip(np.r_[0, ends[:-1]], ends)]
    return embeds, items, thumbs
