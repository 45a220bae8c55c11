"""Catalogue-search speed: index build rate and query latency.

    python tools/analysis_tools/search_benchmark.py CONFIG [CHECKPOINT] \
        --gallery SPEC [--queries 100] [--topk 10] [--rerank-k 16] \
        [--build-batch-size 64] [--batch-size 16] [--work-dir DIR] \
        [--cfg-options KEY=VALUE ...]

Builds a search index of the gallery (``mvlt.apis.build_search_index``,
as ``tools/misc/build_search_index.py``) and reports its rate in images/s,
then runs text queries (the gallery's distinct captions, in turn) through
:class:`mvlt.apis.CatalogueSearch` and reports p50 / p95 latency of the ITC
search (query embedding + faiss + exact similarities), of the ITM re-rank of
the top k' (image reads + ITM) and of the whole query. Without a checkpoint
the model keeps its seeded random initialisation: the timings do not depend
on the weights. The model needs an ITC head (in the config, or added with
``--cfg-options model.heads.itc.type=ITCHead ...``).

The end-to-end mode does the same on a generated shop catalogue of N
photos (tar shards of the demo's garment drawer, several photos per
product; written once into the folder of ``--gallery``, reused after):

    python tools/analysis_tools/search_benchmark.py CONFIG CHECKPOINT \
        --generate 100000 --gallery DIR/manifest.json --work-dir WORK \
        [--index auto] --out FILE.json

and records the build's images/s, its time per stage, the index's size on
disk and the recall@10 the builder measured (``benchmark_modes/e2e.py``).
The build is resumable: run again with the same WORK, finished shards are
kept.

The synthetic mode measures the approximate-nearest-neighbour layer alone,
on clustered random embeddings of the model's width (no model, no images):

    python tools/analysis_tools/search_benchmark.py --synthetic 1000000 \
        [--dim 256] [--index auto|FACTORY] [--threads 1] \
        [--target-recall 0.95] [--memory-budget-mb MB] \
        [--search-params nprobe=16] --out FILE.json

and writes ``p50_ms``, ``p95_ms``, ``recall_at_10`` (against exact search),
``index_bytes``, ``startup_s`` and more to FILE.json
(``benchmark_modes/ann.py``). The storage mode measures opening the item
table and thumbnail packs of N synthetic items (and the format-1
``items.jsonl`` read whole, for comparison; with ``--ann-dir`` the faiss
files of a ``--synthetic N --work-dir DIR`` run too):

    python tools/analysis_tools/search_benchmark.py --store 1000000 \
        --work-dir DIR [--ann-dir ANN_DIR] --out FILE.json

(``benchmark_modes/store.py``). The update mode adds products to the
index of those two runs (synthetic embeddings; ``benchmark_modes/update.py``):

    python tools/analysis_tools/search_benchmark.py --add-products 1000 \
        --ann-dir ANN_DIR --store-dir DIR --work-dir DIR2 --out FILE.json
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import tempfile
from typing import List, Optional

import numpy as np
import torch

from mvlt.apis import CatalogueSearch, SearchIndex
from mvlt.apis.serving import add_query_options
from mvlt.registry import MODELS
from mvlt.utils.cfg_options import cfg_options_argv
from mvlt.utils.cli import add_cfg_options, load_args_config

# The mode modules lie next to this file (as for benchmark.py).
if osp.dirname(osp.abspath(__file__)) not in sys.path:
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_modes.ann import run_synthetic, write_result  # noqa: E402
from benchmark_modes.e2e import build_figures  # noqa: E402
from benchmark_modes.e2e import ensure_catalogue  # noqa: E402
from benchmark_modes.e2e import print_build_figures  # noqa: E402
from benchmark_modes.e2e import run_build_tool  # noqa: E402
from benchmark_modes.store import run_store  # noqa: E402
from benchmark_modes.update import run_update  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    # The config is optional (the synthetic mode has no model), so not
    # config_parser's required positional.
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?')
    add_cfg_options(parser)
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--gallery')
    parser.add_argument('--image-root')
    add_query_options(parser, queries=100, rerank_k=16)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--build-batch-size',
        type=int,
        default=64,
        help='images per forward pass while building')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=16,
        help='pairs per forward pass while serving')
    parser.add_argument(
        '--image-sizes',
        nargs='*',
        default=[],
        metavar='WxH',
        help='also time image queries (ITM re-rank of --rerank-k captions) '
        'of uploads of these sizes, e.g. 256x256 4000x3000')
    parser.add_argument('--image-rounds', type=int, default=5)
    parser.add_argument('--work-dir', help='keep the index here')
    parser.add_argument(
        '--generate',
        type=int,
        metavar='N',
        help='write a synthetic catalogue of N photos to the folder of '
        '--gallery (DIR/manifest.json) unless it is there')
    parser.add_argument(
        '--generate-workers',
        type=int,
        default=0,
        help='processes that draw the catalogue (0: this one)')
    parser.add_argument(
        '--rank-queries',
        type=int,
        default=100,
        help="held-out captions of the build's ITC vs ITM measurement")
    parser.add_argument('--seed', type=int, default=0)
    synthetic = parser.add_argument_group(
        'synthetic ANN mode (--index, --target-recall and '
        '--memory-budget-mb also apply to builds)')
    synthetic.add_argument(
        '--synthetic', type=int, metavar='N', help='items (no model)')
    synthetic.add_argument('--dim', type=int, default=256)
    synthetic.add_argument(
        '--index', default='auto', help="faiss factory string or 'auto'")
    synthetic.add_argument(
        '--threads', type=int, default=1, help='faiss threads per query')
    synthetic.add_argument('--target-recall', type=float, default=0.95)
    synthetic.add_argument('--memory-budget-mb', type=float)
    synthetic.add_argument(
        '--search-params', default='', help='e.g. nprobe=16 (else tuned)')
    synthetic.add_argument('--out', help='JSON of the figures')
    store = parser.add_argument_group('storage mode')
    store.add_argument(
        '--store', type=int, metavar='N', help='items (no model)')
    store.add_argument('--ann-dir', help='--work-dir of a --synthetic N run')
    store.add_argument(
        '--add-products',
        type=int,
        metavar='M',
        help='add M products to the index of --ann-dir and --store-dir')
    store.add_argument('--store-dir', help='--work-dir of a --store N run')
    args = parser.parse_args(argv)
    if args.add_products is not None and not (
            args.ann_dir and args.store_dir and args.work_dir):
        parser.error('--add-products needs --ann-dir, --store-dir and '
                     '--work-dir')
    if args.synthetic is None and args.store is None and \
            args.add_products is None and (
                not args.config or not args.gallery):
        parser.error('give CONFIG and --gallery, --synthetic N or --store N')
    if args.store is not None and not args.work_dir:
        parser.error('--store N needs --work-dir (the tables are written '
                     'there)')
    return args


def percentiles(values: List[float]) -> dict:
    """p50 / p95 / max of a list of milliseconds."""
    array = np.asarray(values, np.float64)
    return dict(
        p50=float(np.percentile(array, 50)),
        p95=float(np.percentile(array, 95)),
        max=float(array.max()))


def time_image_queries(search: CatalogueSearch, sizes: List[str],
                       rounds: int, topk: int, rerank_k: int) -> dict:
    """Median ms of an image query per upload size (``'WxH'``), the sizes
    interleaved round by round so that load on the machine hits all alike
    (random pixels: the query's cost does not depend on its content)."""
    rng = np.random.default_rng(0)
    images = {}
    for size in sizes:
        width, height = (int(v) for v in size.lower().split('x'))
        images[size] = rng.integers(0, 256, (height, width, 3), np.uint8)
    times: dict = {size: [] for size in sizes}
    for round_ in range(rounds + 1):
        for size, image in images.items():
            out = search.search_image(image, topk, rerank_k)
            if round_:  # the first round warms up
                times[size].append(out['timing']['total'])
    return {size: float(np.median(v)) for size, v in times.items()}


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the benchmark; print and return its figures."""
    args = parse_args(argv)
    if args.store is not None or args.add_products is not None:
        result = run_store(args.store, args.work_dir, args.ann_dir) \
            if args.store is not None else run_update(
                args.ann_dir, args.store_dir, args.work_dir,
                args.add_products)
        print(json.dumps(result, indent=2))
        if args.out:
            with open(args.out, 'w') as f:
                json.dump(result, f, indent=2)
        return result
    if args.synthetic is not None:
        result = run_synthetic(
            args.synthetic,
            args.dim,
            args.index,
            args.threads,
            args.queries if args.queries != 100 else 1000,
            args.target_recall,
            int(args.memory_budget_mb * 2**20)
            if args.memory_budget_mb else None,
            args.search_params,
            args.work_dir,
            seed=args.seed)
        write_result(result, args.out)
        return result
    cfg = load_args_config(args)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='search_benchmark_')
    os.makedirs(work_dir, exist_ok=True)
    checkpoint = args.checkpoint
    if checkpoint is None:
        torch.manual_seed(args.seed)
        model = MODELS.build(cfg.model)
        checkpoint = osp.join(work_dir, 'random_init.pth')
        torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
        del model
    if args.generate:
        ensure_catalogue(args.gallery, args.generate, args.generate_workers)
    index_dir = osp.join(work_dir, 'index')
    load_before = os.getloadavg()
    argv = [
        args.config, checkpoint, '--gallery', args.gallery, '--out',
        index_dir, '--batch-size',
        str(args.build_batch_size), '--index', args.index,
        '--target-recall',
        str(args.target_recall), '--rank-queries',
        str(args.rank_queries)
    ] + cfg_options_argv(args.cfg_options)
    if args.image_root:
        argv += ['--image-root', args.image_root]
    if args.memory_budget_mb:
        argv += ['--memory-budget-mb', str(args.memory_budget_mb)]
    meta = run_build_tool(argv)
    search = CatalogueSearch(
        SearchIndex(index_dir, batch_size=args.batch_size))
    captions = search.index.items.live_captions()
    timings = dict(itc=[], itm=[], total=[])
    for i in range(args.warmup + args.queries):
        out = search.search_text(captions[i % len(captions)], args.topk,
                                 args.rerank_k)
        if i >= args.warmup:
            for key in timings:
                timings[key].append(out['timing'][key])
    image_ms = time_image_queries(search, args.image_sizes,
                                  args.image_rounds, args.topk, args.rerank_k)
    result = dict(
        gallery=meta['gallery']['path'],
        num_images=meta['num_items'],
        build_seconds=meta['build_seconds'],
        build_images_per_second=meta['images_per_second'],
        **build_figures(meta, index_dir),
        queries=args.queries,
        topk=args.topk,
        rerank_k=args.rerank_k,
        latency_ms={
            key: percentiles(v)
            for key, v in timings.items()
        },
        image_query_ms=image_ms,
        torch_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        load_average_before=load_before,
        load_average=os.getloadavg(),
        processor=platform.processor() or platform.machine())
    print(f"Index build: {meta['num_items']} images in "
          f"{meta['build_seconds']:.1f} s = "
          f"{meta['images_per_second']:.1f} images/s (decode, thumbnail, "
          'ITC embedding, hashing)')
    print(f'Text queries: {args.queries}, top {args.topk}, ITM re-rank of '
          f'the top {args.rerank_k}; torch threads {torch.get_num_threads()}'
          f', load average {os.getloadavg()[0]:.1f}')
    for key, name in (('itc', 'ITC search'), ('itm', 'ITM re-rank'),
                      ('total', 'whole query')):
        figures = result['latency_ms'][key]
        print(f"  {name:<12} p50 {figures['p50']:8.1f} ms   p95 "
              f"{figures['p95']:8.1f} ms   max {figures['max']:8.1f} ms")
    for size, ms in image_ms.items():
        print(f'  image query {size:>10}: median {ms:8.1f} ms (ITM re-rank '
              f'of {args.rerank_k} captions)')
    print_build_figures(result)
    for path in (osp.join(work_dir, 'search_benchmark.json'), args.out):
        if path:
            with open(path, 'w') as f:
                json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
