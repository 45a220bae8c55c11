"""The files of a catalogue-search index folder and what ties it to its
sources: file names, format version, serving backends, the mismatch error
and the command that rebuilds an index.

An index folder holds ``meta.json`` (written last: its presence marks a
complete index), ``config.py`` (the model config it was built with),
``items.jsonl`` (row, product id, caption, category, thumbnail),
``thumbs/``, and with an ITC head ``images.faiss`` / ``captions.faiss``
(exact or approximate nearest-neighbour indexes, :mod:`mvlt.apis.ann_index`;
their factory, search parameters and measured recall@10 are in
``meta['ann']``), ``images.npy`` / ``captions.npy`` (the exact embeddings,
read row by row when served) and ``captions.json`` (distinct captions and
their rows). Without an ITC head
an index can be built for exact ITM scoring only (``mode='exact-itm'``).
Written by :mod:`mvlt.apis.search_index_build`, opened by
:mod:`mvlt.apis.search_index`.
"""
import shlex
from typing import Callable

#: Version of the folder layout; an index of another version is refused.
INDEX_FORMAT = 1
META_FILE = 'meta.json'
CONFIG_FILE = 'config.py'
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
    options = meta['config'].get('options') or {}
    if options:
        words += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    return ' '.join(shlex.quote(w) for w in words)
