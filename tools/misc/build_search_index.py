"""Build a catalogue-search index of a product gallery with a trained MVLT.

    python tools/misc/build_search_index.py CONFIG CHECKPOINT \
        --gallery SPEC --out DIR [--image-root DIR] [--batch-size 64] \
        [--exact-itm] [--backend onnxruntime --onnx EXPORT_DIR] \
        [--cfg-options ...]

The gallery is embedded in shards (``--shard-size``) written as they
finish: a killed build resumes where it stopped, and
``tools/dist_run.sh N misc/build_search_index.py ...`` shares the shards
among N processes (CPU or GPU).

SPEC is a Fashion-Gen HDF5 split (``.h5``), a JSON-lines image-caption file
(``.jsonl``, ``img_path`` relative to ``--image-root``, default its folder),
image-caption tar shards (their ``manifest.json``) or a folder of images
(captions from ``NAME.txt`` beside each image, else the file name; category
= sub-folder); prefix it with ``fashiongen:``, ``jsonl:``, ``shards:`` or
``folder:`` to say which. Every image is embedded by the model's ITC head
(image-only passes) into a faiss index; serve it with
``python tools/demo/search_app.py DIR``.

A model without an ITC head cannot make the index; the tool says so, with
the time exact ITM scoring of every image would take per query, and
``--exact-itm`` builds an index that scores queries that way. That case
exits with status 3 (other errors: 1 or 2).

``--backend onnxruntime`` embeds with the ONNX graphs of
``tools/deployment/export_onnx.py`` (refused unless exported from
CHECKPOINT with the config's vocabulary) instead of the PyTorch model.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeRemainingColumn)

from mvlt.apis import (MVLTInferencer, build_search_index,
                       estimate_exact_itm_seconds, open_gallery)
from mvlt.apis.ann_files import describe_ann
from mvlt.apis.ranking_choice import describe_ranking
from mvlt.apis.search_index import BACKENDS
from mvlt.image import ImageDecodeError
from mvlt.utils.cli import model_parser

#: Exit status when the model has no ITC head (scripts tell it apart from
#: errors, e.g. tools/demo/run_demo.sh).
NO_ITC_EXIT = 3


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = model_parser(
        __doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--gallery',
        required=True,
        help='[fashiongen:|jsonl:|folder:]PATH of the products')
    parser.add_argument('--out', required=True, help='index folder')
    parser.add_argument(
        '--image-root',
        help='JSON-lines galleries: folder of the img_path values')
    parser.add_argument(
        '--batch-size', type=int, default=64, help='images per forward pass')
    parser.add_argument(
        '--exact-itm',
        action='store_true',
        help='no ITC head: index for exact (slow) ITM scoring of every item')
    parser.add_argument(
        '--on-bad-sample',
        choices=('raise', 'skip'),
        default='raise',
        help='an unreadable image: stop and name it (raise), or leave it '
        'out of the index and list it (skip)')
    parser.add_argument(
        '--index',
        default='auto',
        help="faiss index factory string of the image table (e.g. "
        "'IVF1024,PQ64x4fs,Refine(SQ8)', 'HNSW32,SQ8') or 'auto' (exact "
        'below 50K images; docs/search_at_scale.md)')
    parser.add_argument(
        '--memory-budget-mb',
        type=float,
        help='MiB each faiss index may hold (auto chooses within it)')
    parser.add_argument(
        '--target-recall',
        type=float,
        default=0.95,
        help='recall@10 vs exact search that nprobe / efSearch are raised '
        'to (measured on held-out queries, recorded in meta.json)')
    parser.add_argument(
        '--shard-size',
        type=int,
        default=1024,
        help='images embedded and written at a time; a killed build '
        'resumes after the last finished shard, and tools/dist_run.sh N '
        'shares the shards among N processes')
    parser.add_argument(
        '--rank-queries',
        type=int,
        default=100,
        help='held-out captions on which ITC, ITC + ITM and fused ranking '
        "are compared (the page's default follows; 0: not measured)")
    parser.add_argument(
        '--backend',
        choices=BACKENDS,
        default='pytorch',
        help='who embeds: PyTorch, or ONNX Runtime on the graphs of --onnx')
    parser.add_argument(
        '--onnx', help='folder of tools/deployment/export_onnx.py')
    return parser.parse_args(argv)


def onnx_inferencer(args: argparse.Namespace):
    """The ONNX Runtime backend for CHECKPOINT and the config's vocabulary
    (refused with a message when the export does not match them)."""
    from mvlt.deploy import ManifestMismatchError, OnnxInferencer
    from mvlt.utils.config import load_config
    if not args.onnx:
        sys.exit('--backend onnxruntime needs --onnx EXPORT_DIR (made by '
                 'tools/deployment/export_onnx.py).')
    if args.exact_itm:
        sys.exit('An exact-ITM index is built with the PyTorch backend.')
    cfg = load_config(args.config, args.cfg_options)
    tokenizer = cfg.model.data_preprocessor.tokenizer
    vocab = tokenizer.get('vocab_file') if isinstance(tokenizer,
                                                      dict) else tokenizer
    if vocab and osp.isdir(vocab):
        vocab = osp.join(vocab, 'vocab.txt')
    try:
        return OnnxInferencer(
            args.onnx,
            checkpoint=args.checkpoint,
            vocab_file=vocab,
            batch_size=args.batch_size,
            cfg=cfg)
    except (FileNotFoundError, ManifestMismatchError) as err:
        sys.exit(str(err))


def _build(args: argparse.Namespace, inferencer: MVLTInferencer,
           gallery, bar: Progress, task) -> dict:
    """Build the index with a progress bar (done / total, images/s, time
    left); return its meta data."""

    def progress(done: int, total: int) -> None:
        speed = bar.tasks[task].speed  # rich's windowed rate
        bar.update(
            task,
            completed=done,
            rate=f'{speed:.1f} images/s' if speed else '')

    return build_search_index(
        inferencer,
        gallery,
        args.out,
        config_source=args.config,
        config_options=args.cfg_options,
        exact_itm=args.exact_itm,
        chunk_size=args.batch_size,
        index=args.index,
        memory_budget_mb=args.memory_budget_mb,
        target_recall=args.target_recall,
        rank_queries=args.rank_queries,
        shard_size=args.shard_size,
        rank=int(os.environ.get('RANK', 0)),
        world_size=int(os.environ.get('WORLD_SIZE', 1)),
        progress=progress)


def main(argv: Optional[List[str]] = None) -> dict:
    """Build the index; return its meta data.

    Raises:
        SystemExit: Bad arguments or gallery (status 1 or 2), or a model
            without an ITC head and no ``--exact-itm`` (status 3, after a
            message with the time exact ITM scoring would take).
    """
    args = parse_args(argv)
    if args.batch_size < 1:
        sys.exit('--batch-size must be >= 1.')
    if not osp.isfile(args.checkpoint):
        sys.exit(f'Checkpoint {args.checkpoint} does not exist.')
    try:
        gallery = open_gallery(
            args.gallery, args.image_root, on_bad_sample=args.on_bad_sample)
    except (FileNotFoundError, ValueError, KeyError) as err:
        sys.exit(f'Cannot open gallery {args.gallery}: {err}')
    for file, reason in gallery.skipped:
        print(f'Skipped {file}: {reason}', file=sys.stderr)
    if gallery.skipped:
        print(f'Skipped {len(gallery.skipped)} unreadable image(s).')
    if args.backend == 'onnxruntime':
        inferencer = onnx_inferencer(args)
    else:
        inferencer = MVLTInferencer(
            args.config,
            args.checkpoint,
            device=args.device,
            cfg_options=args.cfg_options,
            batch_size=args.batch_size)
    print(f'Gallery: {len(gallery)} images ({gallery.kind}: {gallery.path})')
    if not inferencer.has_itc and not args.exact_itm:
        seconds = estimate_exact_itm_seconds(inferencer, gallery)
        print(
            f'{args.checkpoint} has no ITC head (model.heads.itc in the '
            'config and trained weights for it in the checkpoint), so its '
            'images cannot be embedded into a search index.\n'
            'Instead, exact ITM scoring can rank every gallery image for '
            f'each query: about {seconds:.1f} s per text query for '
            f'{len(gallery)} images on this machine (measured on one '
            f'batch). To build an index that searches that way, run again '
            'with --exact-itm. For fast search, train or fine-tune with an '
            'ITC head (docs/architecture.md).',
            file=sys.stderr)
        raise SystemExit(NO_ITC_EXIT)
    columns = (TextColumn('embedding' if inferencer.has_itc
                          and not args.exact_itm else 'thumbnails'),
               BarColumn(), MofNCompleteColumn(),
               TextColumn('{task.fields[rate]}'), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task('build', total=len(gallery), rate='')
        try:
            meta = _build(args, inferencer, gallery, bar, task)
        except ImageDecodeError as err:
            sys.exit(f'{err}\nRemove or replace the file, or build with '
                     '--on-bad-sample skip to leave unreadable images out.')
    if meta is None:
        print(f"Process {os.environ.get('RANK')}: its shards are written; "
              'process 0 assembles the index.')
        return None
    print(f"Index of {meta['num_items']} images ({meta['mode']}) in "
          f"{meta['build_seconds']:.1f} s ({meta['images_per_second']:.1f} "
          f'images/s) -> {args.out}')
    print((describe_ann(meta) + describe_ranking(meta)).strip())
    print(f'Serve it: python tools/demo/search_app.py {args.out}')
    return meta


if __name__ == '__main__':
    main()
