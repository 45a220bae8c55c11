"""The files of a catalogue-search index folder and what ties it to its
sources: file names, format version, serving backends, the mismatch error
and the command that rebuilds an index.

An index folder holds ``meta.json`` (written last: its presence marks a
complete index, and naming the files of the current version),
``config.py`` (the model config it was built with), ``items.sqlite`` (the
item table: row, product id, caption, category, where the thumbnail lies;
distinct captions) and ``thumbs/pack-NNNNNN.bin`` (the thumbnails, packed:
:mod:`mvlt.apis.item_store`), and with an ITC head ``images.faiss`` /
``captions.faiss``
(exact or approximate nearest-neighbour indexes, :mod:`mvlt.apis.ann_index`;
their factory, search parameters and measured recall@10 are in
``meta['ann']``), ``images.npy`` / ``captions.npy`` (the exact embeddings,
read row by row when served). Without an ITC head
an index can be built for exact ITM scoring only (``mode='exact-itm'``).
Written by :mod:`mvlt.apis.search_index_build`, opened by
:mod:`mvlt.apis.search_index`.
"""
import json
import os
import os.path as osp
import shlex
from typing import Callable

from mvlt.utils.cfg_options import cfg_options_argv

#: Version of the folder layout; an index of another version is refused.
#: 2: item table in SQLite and packed thumbnails (1: items.jsonl, one
#: thumbnail file per item, captions.json).
INDEX_FORMAT = 2
META_FILE = 'meta.json'
CONFIG_FILE = 'config.py'
#: Files of format 1, removed when an index is built again in its folder.
ITEMS_FILE = 'items.jsonl'
CAPTIONS_FILE = 'captions.json'
IMAGE_INDEX = 'images.faiss'
CAPTION_INDEX = 'captions.faiss'
THUMB_DIR = 'thumbs'
MODES = ('itc', 'exact-itm')
#: Who runs the model when serving: the PyTorch model, or its ONNX graphs
#: (tools/deployment/export_onnx.py) with ONNX Runtime, without torch.
BACKENDS = ('pytorch', 'onnxruntime')

ProgressFn = Callable[[int, int], None]


class IndexMismatchError(RuntimeError):
    """An index does not belong to the checkpoint or gallery at hand."""


def table_file(meta: dict, name: str) -> tuple:
    """Table ``name`` (``'images'`` / ``'captions'``) of an index as its
    ``meta['tables']`` records it: (file stem of its ``.faiss`` / ``.npy``,
    vectors its faiss index holds or None for all rows, removed ids the faiss
    index still holds). Updates write new files under new stems
    (:mod:`mvlt.apis.search_index_update`); a built index uses the names."""
    entry = (meta.get('tables') or {}).get(name) or {}
    return entry.get('file', name), entry.get('ntotal'), entry.get(
        'tombstones', 0)


def write_meta(index_dir: str, meta: dict) -> None:
    """Write ``meta.json`` atomically (a temporary file, synced, renamed):
    a reader sees the old or the new one, never a half-written one."""
    path = osp.join(index_dir, META_FILE)
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + '.tmp', path)


def rebuild_command(meta: dict, out_dir: str) -> str:
    """The command that builds ``out_dir`` again from the index's sources.
    """
    gallery = meta['gallery']
    words = [
        'python', 'tools/misc/build_search_index.py', meta['config']['source'],
        meta['checkpoint']['path'], '--gallery',
        f"{gallery['kind']}:{gallery['path']}", '--out', out_dir
    ]
    if gallery.get('image_root'):
        words += ['--image-root', gallery['image_root']]
    if gallery.get('exclude'):
        words += ['--on-bad-sample', 'skip']
    if meta['mode'] == 'exact-itm':
        words.append('--exact-itm')
    build = meta.get('build') or {}
    for key, flag in (('index', '--index'), ('memory_budget_mb',
                                             '--memory-budget-mb'),
                      ('target_recall', '--target-recall')):
        if build.get(key) is not None:
            words += [flag, str(build[key])]
    if meta.get('onnx_dir'):
        words += ['--backend', 'onnxruntime', '--onnx', meta['onnx_dir']]
    words += cfg_options_argv(meta['config'].get('options'))
    return ' '.join(shlex.quote(w) for w in words)
