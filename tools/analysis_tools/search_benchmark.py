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
"""
import argparse
import json
import os
import os.path as osp
import platform
import tempfile
from typing import List, Optional

import numpy as np
import torch

from mvlt.apis import (CatalogueSearch, MVLTInferencer, SearchIndex,
                       build_search_index, open_gallery)
from mvlt.registry import MODELS
from mvlt.utils.cli import config_parser, load_args_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = config_parser(
        __doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--gallery', required=True)
    parser.add_argument('--image-root')
    parser.add_argument('--queries', type=int, default=100)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--topk', type=int, default=10)
    parser.add_argument('--rerank-k', type=int, default=16)
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
    parser.add_argument('--work-dir', help='keep the index here')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def percentiles(values: List[float]) -> dict:
    """p50 / p95 / max of a list of milliseconds."""
    array = np.asarray(values, np.float64)
    return dict(
        p50=float(np.percentile(array, 50)),
        p95=float(np.percentile(array, 95)),
        max=float(array.max()))


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the benchmark; print and return its figures."""
    args = parse_args(argv)
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
    gallery = open_gallery(args.gallery, args.image_root)
    inferencer = MVLTInferencer(
        cfg, checkpoint, batch_size=args.build_batch_size)
    if not inferencer.has_itc:
        raise SystemExit('The model has no ITC head: add one to the config '
                         'or with --cfg-options model.heads.itc.type=ITCHead'
                         ' model.heads.itc.visual_channels=C ...')
    index_dir = osp.join(work_dir, 'index')
    meta = build_search_index(
        inferencer,
        gallery,
        index_dir,
        config_source=args.config,
        config_options=args.cfg_options,
        chunk_size=args.build_batch_size)
    del inferencer
    search = CatalogueSearch(
        SearchIndex(index_dir, batch_size=args.batch_size))
    captions = [c['caption'] for c in search.index.captions]
    timings = dict(itc=[], itm=[], total=[])
    for i in range(args.warmup + args.queries):
        out = search.search_text(captions[i % len(captions)], args.topk,
                                 args.rerank_k)
        if i >= args.warmup:
            for key in timings:
                timings[key].append(out['timing'][key])
    result = dict(
        gallery=gallery.path,
        num_images=len(gallery),
        build_seconds=meta['build_seconds'],
        build_images_per_second=meta['images_per_second'],
        queries=args.queries,
        topk=args.topk,
        rerank_k=args.rerank_k,
        latency_ms={
            key: percentiles(v)
            for key, v in timings.items()
        },
        torch_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        load_average=os.getloadavg(),
        processor=platform.processor() or platform.machine())
    print(f"Index build: {len(gallery)} images in {meta['build_seconds']:.1f}"
          f" s = {meta['images_per_second']:.1f} images/s (decode, "
          'thumbnail, ITC embedding, hashing)')
    print(f'Text queries: {args.queries}, top {args.topk}, ITM re-rank of '
          f'the top {args.rerank_k}; torch threads {torch.get_num_threads()}'
          f', load average {os.getloadavg()[0]:.1f}')
    for key, name in (('itc', 'ITC search'), ('itm', 'ITM re-rank'),
                      ('total', 'whole query')):
        figures = result['latency_ms'][key]
        print(f"  {name:<12} p50 {figures['p50']:8.1f} ms   p95 "
              f"{figures['p95']:8.1f} ms   max {figures['max']:8.1f} ms")
    with open(osp.join(work_dir, 'search_benchmark.json'), 'w') as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
