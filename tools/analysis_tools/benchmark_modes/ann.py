"""The synthetic mode of tools/analysis_tools/search_benchmark.py: the ANN
layer of the catalogue search at N items, without a model.

Clustered random embeddings of the model's width stand in for a catalogue's
ITC embeddings (:func:`clustered_embeddings`); the index is built by the same
function the index builder uses (:func:`mvlt.apis.ann_index.build_ann_index`,
search parameters tuned by :func:`tune_search_params`), written to disk, and
start-up is timed as the search service opens it (faiss file + embeddings
file, read by row). Queries then run one at a time through
:func:`served_topk`, the served path, on ``threads`` faiss threads.
"""
import json
import os
import os.path as osp
import resource
import tempfile
import time
from typing import Optional

import numpy as np

from mvlt.apis.ann_files import open_embeddings, open_faiss_index
from mvlt.apis.ann_index import (DEFAULT_TARGET_RECALL, SHORTLIST_MARGIN,
                                 build_ann_index, exact_topk, import_faiss,
                                 parse_search_params, recall_at_k, served_topk,
                                 set_search_params, tune_search_params)

#: Items per cluster and the spread of a cluster: a catalogue has many near
#: variants of one product type (colours, sizes, photos); with spread 1.0 an
#: item's cosine to its cluster centre is about 0.7, near the spread of ITC
#: image embeddings within one fashion category.
ITEMS_PER_CLUSTER = 200
CLUSTER_NOISE = 1.0
#: Within a cluster items vary along a few directions (colour, length,
#: pattern), not all 256: learned embeddings have a low intrinsic dimension
#: (Pope et al., "The intrinsic dimension of images and its impact on
#: learning", ICLR 2021). Isotropic noise in all D directions would make
#: every within-cluster neighbour equally near, which no real index faces.
INTRINSIC_DIM = 16
ISOTROPIC_NOISE = 0.1


def clustered_embeddings(num: int,
                         dim: int,
                         seed: int = 0,
                         num_clusters: Optional[int] = None,
                         chunk: int = 262_144) -> np.ndarray:
    """(num, dim) float32 L2-normalised points around random unit centres.

    Cluster sizes and spreads vary (Zipf-like sizes; spread uniform in
    [0.5, 1.5] x :data:`CLUSTER_NOISE` per cluster), as real catalogues have
    popular and rare product types; within a cluster items vary along
    :data:`INTRINSIC_DIM` directions of its own, plus a little isotropic
    noise (:data:`ISOTROPIC_NOISE`). The same ``seed`` and ``num_clusters``
    give the same centres, so queries drawn with another seed come from the
    same distribution.
    """
    num_clusters = num_clusters or max(1, num // ITEMS_PER_CLUSTER)
    rng = np.random.default_rng(seed)
    centres_rng = np.random.default_rng(12345 + num_clusters)
    centres = centres_rng.standard_normal((num_clusters, dim),
                                          dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, num_clusters + 1)**0.5
    weights = centres_rng.permutation(weights / weights.sum())
    spread = centres_rng.uniform(0.5, 1.5, num_clusters).astype(np.float32)
    bases = centres_rng.standard_normal((num_clusters, INTRINSIC_DIM, dim),
                                        dtype=np.float32)
    bases /= np.linalg.norm(bases, axis=2, keepdims=True)
    out = np.empty((num, dim), np.float32)
    for first in range(0, num, chunk):
        size = min(chunk, num - first)
        which = rng.choice(num_clusters, size, p=weights)
        latent = rng.standard_normal((size, INTRINSIC_DIM), dtype=np.float32)
        along = np.empty((size, dim), np.float32)
        order = np.argsort(which, kind='stable')
        clusters, starts = np.unique(which[order], return_index=True)
        for c, lo, hi in zip(clusters, starts, list(starts[1:]) + [size]):
            rows = order[lo:hi]
            along[rows] = latent[rows] @ bases[c]
        along /= np.sqrt(INTRINSIC_DIM)
        noise = rng.standard_normal((size, dim), dtype=np.float32)
        block = centres[which] + CLUSTER_NOISE * spread[which, None] * (
            along + ISOTROPIC_NOISE * noise / np.sqrt(dim))
        out[first:first + size] = block / np.linalg.norm(
            block, axis=1, keepdims=True)
    return out


def _rss_mb() -> float:
    """Resident memory of this process now (MiB, from /proc)."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20


def run_synthetic(num: int,
                  dim: int = 256,
                  factory: str = 'auto',
                  threads: int = 1,
                  queries: int = 1000,
                  target_recall: float = DEFAULT_TARGET_RECALL,
                  memory_budget: Optional[int] = None,
                  search_params: str = '',
                  work_dir: Optional[str] = None,
                  seed: int = 0) -> dict:
    """Build, open and query an ANN index of ``num`` synthetic items.

    Returns:
        dict: ``p50_ms``, ``p95_ms`` (one query at a time), ``recall_at_10``
        (against exact search, on queries held out from training),
        ``index_bytes`` (the faiss file), ``startup_s`` (opening the index
        file and the embeddings), ``rss_mb`` after start-up and after the
        queries, build times and the machine's load.
    """
    faiss = import_faiss()
    work_dir = work_dir or tempfile.mkdtemp(prefix='ann_benchmark_')
    os.makedirs(work_dir, exist_ok=True)
    start = time.perf_counter()
    embeds = clustered_embeddings(num, dim, seed)
    held_out = clustered_embeddings(queries, dim, seed + 1,
                                    max(1, num // ITEMS_PER_CLUSTER))
    generated = time.perf_counter()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building: all cores
    truth = exact_topk(embeds, held_out, 10)
    truth_seconds = time.perf_counter() - generated
    index, build = build_ann_index(embeds, factory, memory_budget, seed)
    tuned = tune_search_params(
        index,
        embeds,
        held_out[:queries // 2],
        target_recall,
        truth=truth[:queries // 2])
    if search_params:
        tuned['params'] = parse_search_params(search_params)
    index_path = osp.join(work_dir, 'images.faiss')
    embeds_path = osp.join(work_dir, 'images.npy')
    faiss.write_index(index, index_path)
    np.save(embeds_path, embeds)
    del index, embeds

    faiss.omp_set_num_threads(threads)
    rss_before_open = _rss_mb()
    opened = time.perf_counter()
    index = open_faiss_index(index_path, num, dim, 'search_benchmark.py')
    set_search_params(index, tuned['params'])
    stored = open_embeddings(embeds_path, num, dim, 'search_benchmark.py')
    startup = time.perf_counter() - opened
    rss_open = _rss_mb()
    latencies, found = [], []
    for query in held_out:
        begin = time.perf_counter()
        rows = served_topk(index, stored, query[None], 10, SHORTLIST_MARGIN)
        latencies.append(1000 * (time.perf_counter() - begin))
        found.append(rows[0])
    # Recall of the second half only: the first half chose the parameters.
    half = queries // 2
    result = dict(
        num_items=num,
        dim=dim,
        factory=build['factory'],
        search_params=tuned['params'],
        threads=threads,
        queries=queries,
        p50_ms=round(float(np.percentile(latencies, 50)), 3),
        p95_ms=round(float(np.percentile(latencies, 95)), 3),
        recall_at_10=round(
            recall_at_k(np.array(found[half:]), truth[half:], 10), 4),
        recall_at_10_tuning=tuned['recall_at_10'],
        tuning_curve=tuned['curve'],
        index_bytes=os.path.getsize(index_path),
        embeddings_bytes=os.path.getsize(embeds_path),
        startup_s=round(startup, 3),
        rss_mb=dict(
            before_open=round(rss_before_open, 1),
            after_open=round(rss_open, 1),
            after_queries=round(_rss_mb(), 1),
            peak=round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)),
        build=dict(
            generate_s=round(generated - start, 2),
            exact_truth_s=round(truth_seconds, 2),
            **build),
        load_average=os.getloadavg(),
        cpu_count=os.cpu_count())
    return result


def write_result(result: dict, out: Optional[str]) -> None:
    """Print the headline figures and write the JSON to ``out``."""
    print(f"{result['num_items']:,} x {result['dim']} {result['factory']} "
          f"{result['search_params']}: p50 {result['p50_ms']:.2f} ms, p95 "
          f"{result['p95_ms']:.2f} ms, recall@10 {result['recall_at_10']:.3f},"
          f" index {result['index_bytes'] / 2**20:.0f} MiB, start-up "
          f"{result['startup_s']:.2f} s ({result['threads']} thread(s), load "
          f"average {result['load_average'][0]:.1f})")
    if out:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            json.dump(result, f, indent=2)
