"""Approximate nearest-neighbour (ANN) indexes of ITC embeddings: choice,
training, search parameters tuned to a measured recall, and safe opening.

A catalogue's ITC embeddings (L2-normalised, inner product = cosine
similarity) go into a faiss index named by a faiss *index factory* string
(``'Flat'``, ``'IVF1024,PQ64x4fs,Refine(SQ8)'``, ``'HNSW32,SQ8'``, ...) or
``'auto'``: :func:`auto_factory` picks exact search for small galleries and
an IVF-PQ index with an 8-bit scalar-quantised re-ranking stage above them,
as autofaiss (criteo/autofaiss) picks an IVF-PQ under a memory budget. The
reasons and the figures behind the choice are in ``docs/search_at_scale.md``.

The index is trained on a random sample of the gallery
(:func:`build_ann_index`), then its search parameters (``nprobe`` of IVF,
``efSearch`` of HNSW) are raised until recall@10 against exact search on
held-out queries reaches a target (:func:`tune_search_params`), the way
autofaiss tunes ``nprobe`` for a latency or recall goal. The chosen
parameters and the measured recall go into the index's metadata and can be
changed at query time (:func:`set_search_params`).

Recall is measured on the path a query takes when it is served
(:func:`shortlists`): faiss returns ``k + margin`` candidates and their
exact ITC similarities (from the stored float32 embeddings) order them, so
the figure is the share of the exact top 10 a user is shown.
"""
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mvlt.utils.ranking import itc_similarity, topk_candidates

#: Below this many items ``auto`` keeps exact search: exact search of 1M x
#: 256 float32 takes 64 ms on one thread here and 6.7 ms at 100K
#: (docs/search_at_scale.md), so 50K items cost about 3.4 ms, under the 5 ms
#: a query is allowed, with recall 1.
EXACT_MAX_ITEMS = 50_000
#: Training points per IVF list: faiss's k-means warns below 39 per
#: centroid; 64 is the sample autofaiss's ``get_optimal_train_size`` aims for
#: per list, capped so that training stays minutes, not hours.
TRAIN_POINTS_PER_LIST = 64
MAX_TRAIN_POINTS = 300_000
#: The recall@10 the search parameters are raised to by default (the issue's
#: bar at one million products).
DEFAULT_TARGET_RECALL = 0.95
#: Held-out queries for the recall measurement.
DEFAULT_RECALL_QUERIES = 1000
#: Candidates the refine stage re-scores per result (faiss ``k_factor_rf``),
#: tried in turn at each nprobe / efSearch: re-scoring 40 to 640 SQ8 codes
#: costs far less than probing more lists, and lifts the ceiling PQ codes
#: alone put on recall.
REFINE_K_FACTORS = (4, 16, 64)
#: Extra faiss neighbours fetched beyond those needed, so that the exact
#: ITC order (recomputed by ``itc_similarity``) is taken over a superset of
#: the true top items even where faiss's sums round differently.
SHORTLIST_MARGIN = 8
#: Bytes per item of faiss's id list in an IVF index (int64).
ID_BYTES = 8


def import_faiss():
    """``faiss``, or an ImportError saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise ImportError('The catalogue search needs faiss: pip install -r '
                          'requirements/optional.txt (faiss-cpu).') from None
    return faiss


_FORK_HOOK = []


def serve_single_threaded() -> None:
    """One OpenMP thread for faiss in this process and in every process
    forked from it.

    A process forked after faiss searched on several OpenMP threads hangs
    in its first search (faiss issue #5206: libgomp's thread pool does not
    survive fork; reproduced here with faiss-cpu 1.15); faiss's advice is
    OMP_NUM_THREADS=1. Served queries are one at a time and take about a
    millisecond on one thread (docs/search_at_scale.md), so nothing is lost.
    """
    faiss = import_faiss()
    faiss.omp_set_num_threads(1)
    if not _FORK_HOOK:
        os.register_at_fork(
            after_in_child=lambda: import_faiss().omp_set_num_threads(1))
        _FORK_HOOK.append(True)


def _nlist(num_items: int) -> int:
    """IVF lists: the power of two nearest sqrt(N) (faiss's guideline is
    4 sqrt(N) to 16 sqrt(N) for plain IVF; with fast-scan PQ codes long
    lists are cheap and fewer lists train faster)."""
    return int(2**max(4, round(math.log2(math.sqrt(max(num_items, 1))))))


def estimate_bytes(factory: str, num_items: int, dim: int) -> int:
    """Bytes an index of ``factory`` holds for ``num_items`` vectors of
    width ``dim`` (codes, ids and the coarse quantizer; the factories
    :func:`auto_factory` chooses from, and Flat)."""
    per_item, fixed = 0.0, 0
    for part in factory.split(','):
        if part == 'Flat':
            per_item += 4 * dim
        elif part.startswith('IVF'):
            per_item += ID_BYTES
            fixed += int(part[3:].split('_')[0]) * dim * 4
        elif part.startswith('PQ'):
            m = int(part[2:].split('x')[0])
            per_item += m / 2 if part.endswith('x4fs') else m
        elif part.startswith('Refine(SQ'):
            per_item += dim * int(part[len('Refine(SQ'):-1]) / 8
        else:
            raise ValueError(f'estimate_bytes: unknown factory part {part!r}')
    return int(per_item * num_items + fixed)


def auto_factory(num_items: int,
                 dim: int,
                 memory_budget: Optional[int] = None) -> str:
    """The index ``auto`` builds for ``num_items`` vectors of width ``dim``.

    Exact (``Flat``) up to :data:`EXACT_MAX_ITEMS` when it fits the budget;
    above, the richest of IVF + fast-scan PQ with an 8-bit / 4-bit scalar
    quantised refine stage, or PQ alone, that fits ``memory_budget`` bytes.

    Raises:
        ValueError: Not even the smallest candidate fits the budget (the
            message gives its size).
    """
    budget = memory_budget or float('inf')
    if num_items <= EXACT_MAX_ITEMS and \
            estimate_bytes('Flat', num_items, dim) <= budget:
        return 'Flat'
    nlist = _nlist(num_items)
    m = max(8, dim // 4)
    candidates = [
        f'IVF{nlist},PQ{m}x4fs,Refine(SQ8)',
        f'IVF{nlist},PQ{m}x4fs,Refine(SQ4)', f'IVF{nlist},PQ{m}x4fs',
        f'IVF{nlist},PQ{max(4, m // 2)}x4fs'
    ]
    for factory in candidates:
        if estimate_bytes(factory, num_items, dim) <= budget:
            return factory
    raise ValueError(
        f'No index of {num_items:,} vectors of width {dim} fits a memory '
        f'budget of {budget / 2**20:.0f} MiB; the smallest, {candidates[-1]}'
        f', needs {estimate_bytes(candidates[-1], num_items, dim) / 2**20:.0f}'
        ' MiB. Raise --memory-budget.')


def build_ann_index(embeds: np.ndarray,
                    factory: str = 'auto',
                    memory_budget: Optional[int] = None,
                    seed: int = 0,
                    add_chunk: int = 65536):
    """A faiss inner-product index of ``embeds`` (N, D) float32.

    Args:
        embeds: L2-normalised embeddings, row i gets id i.
        factory: A faiss index factory string or ``'auto'``.
        memory_budget: Bytes the index may hold (``auto`` chooses within it;
            an explicit factory over it is refused after building).
        seed: Seed of the training sample.
        add_chunk: Vectors added at a time (bounds the temporary memory).

    Returns:
        tuple: (faiss index, dict with ``factory``, ``train_size``,
        ``train_seconds``, ``add_seconds``, ``index_bytes``).

    Raises:
        ValueError: A factory faiss does not know, too few items to train
            it, or an index over ``memory_budget``.
    """
    faiss = import_faiss()
    embeds = np.ascontiguousarray(embeds, np.float32)
    num, dim = embeds.shape
    if factory == 'auto':
        factory = auto_factory(num, dim, memory_budget)
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        raise ValueError(f'faiss does not know the index factory string '
                         f'{factory!r}: {str(err).splitlines()[-1]}') from None
    start = time.perf_counter()
    train_size = 0
    if not index.is_trained:
        ivf = _ivf(index)
        lists = ivf.nlist if ivf is not None else 256
        train_size = min(num, max(TRAIN_POINTS_PER_LIST * lists, 10_000),
                         MAX_TRAIN_POINTS)
        if num < lists:
            raise ValueError(f'{factory} has {lists} lists but the gallery '
                             f'only {num} items; use Flat or fewer lists.')
        sample = np.random.default_rng(seed).choice(
            num, train_size, replace=False)
        index.train(embeds[np.sort(sample)])
    trained = time.perf_counter()
    for first in range(0, num, add_chunk):
        index.add(embeds[first:first + add_chunk])
    size = len(faiss.serialize_index(index))
    if memory_budget and size > memory_budget:
        raise ValueError(f'The index {factory} of {num:,} items holds '
                         f'{size / 2**20:.0f} MiB, over the memory budget of '
                         f'{memory_budget / 2**20:.0f} MiB; choose a smaller '
                         "factory or 'auto'.")
    return index, dict(
        factory=factory,
        train_size=train_size,
        train_seconds=round(trained - start, 3),
        add_seconds=round(time.perf_counter() - trained, 3),
        index_bytes=size)


def _ivf(index):
    faiss = import_faiss()
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _hnsw(index):
    faiss = import_faiss()
    for part in (index, getattr(index, 'base_index', None)):
        if part is not None:
            part = faiss.downcast_index(part)
            if hasattr(part, 'hnsw'):
                return part
    return None


def search_param_grid(index) -> Sequence[Dict[str, int]]:
    """Search settings from fastest to most exact (empty dict: none)."""
    ivf = _ivf(index)
    refines = [{'k_factor_rf': k} for k in REFINE_K_FACTORS] if hasattr(
        index, 'k_factor') else [{}]
    if ivf is not None:
        name, values = 'nprobe', [
            2**i for i in range(int(math.log2(ivf.nlist)) + 1)
        ]
    elif _hnsw(index) is not None:
        name, values = 'efSearch', [2**i for i in range(4, 12)]
    else:
        return refines
    return [{name: v, **refine} for v in values for refine in refines]


def set_search_params(index, params: Dict[str, float]) -> None:
    """Set ``nprobe`` / ``efSearch`` / ``k_factor_rf`` of a faiss index.

    Raises:
        ValueError: A parameter this index does not have.
    """
    if not params:
        return
    faiss = import_faiss()
    text = ','.join(f'{k}={v}' for k, v in params.items())
    try:
        faiss.ParameterSpace().set_index_parameters(index, text)
    except RuntimeError:
        raise ValueError(f'The index has no search parameter of {text!r} '
                         '(IVF: nprobe, HNSW: efSearch, refine: '
                         'k_factor_rf).') from None


def parse_search_params(text: str) -> Dict[str, int]:
    """``'nprobe=32,k_factor_rf=4'`` -> ``{'nprobe': 32, ...}``.

    Raises:
        ValueError: Not ``name=integer`` pairs.
    """
    params = {}
    for pair in filter(None, (text or '').split(',')):
        name, _, value = pair.partition('=')
        if not name.strip() or not value.strip().isdigit():
            raise ValueError(f'Search parameters are name=integer pairs '
                             f'joined by commas, e.g. nprobe=32; got {text!r}')
        params[name.strip()] = int(value)
    return params


class RemovedIds:
    """Ids (rows) of a table that must never be returned: products removed
    by an update (:mod:`mvlt.apis.search_index_update`).

    An IVF index drops them (faiss ``remove_ids``); an index without
    removal in faiss (``Flat``, ``HNSW``) still holds them, and the search
    then asks for ``in_index`` more candidates and drops them from the
    shortlist, so the shortlist keeps its length.

    Args:
        ids: The removed ids.
        in_index: How many of them the faiss index still holds.
    """

    def __init__(self, ids: Sequence[int] = (), in_index: int = 0) -> None:
        self.ids = np.unique(np.asarray(ids, np.int64))
        self.in_index = int(in_index)

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` without the removed ids (order kept)."""
        if not len(self.ids):
            return rows
        return rows[~np.isin(rows, self.ids)]


def shortlists(index,
               embeds: np.ndarray,
               queries: np.ndarray,
               count: int,
               removed: Optional[RemovedIds] = None
               ) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Per query, the index's ``count`` candidates and their exact ITC
    similarities: the shortlist every served query is ranked from.

    Args:
        index: The faiss index (approximate or exact).
        embeds: (N, D) stored embeddings (an array or an
            :class:`EmbeddingRows`: only the candidates' rows are read).
        queries: (Q, D) float32.
        count: Candidates asked of faiss (capped at N).
        removed: Ids never returned (removed by updates).

    Returns:
        list: Per query, rows (ascending int64) and their similarities
        (1, len(rows)) by :func:`mvlt.models.utils.itc_similarity`.
    """
    removed = removed or RemovedIds()
    count = min(len(embeds), count + removed.in_index)
    _, found = index.search(np.ascontiguousarray(queries, np.float32), count)
    out = []
    for query, ids in zip(queries, found):
        rows = np.sort(removed.keep(ids[ids >= 0]))
        out.append((rows, itc_similarity(query, embeds[rows])))
    return out


def served_topk(index, embeds: np.ndarray, queries: np.ndarray, k: int,
                margin: int) -> np.ndarray:
    """Rows (Q, k) a query is shown in ITC order: the exact top ``k`` of
    the index's ``k + margin`` candidates (-1 where fewer were found)."""
    out = np.full((len(queries), k), -1, np.int64)
    for i, (rows, similarity) in enumerate(
            shortlists(index, embeds, queries, k + margin)):
        top = topk_candidates(similarity, k)[0]
        out[i, :len(top)] = rows[top]
    return out


def exact_topk(embeds: np.ndarray,
               queries: np.ndarray,
               k: int,
               block: int = 262_144) -> np.ndarray:
    """Rows (Q, k) of the exact inner-product top k (faiss ``IndexFlatIP``,
    searched in blocks of ``block`` gallery rows so that memory stays
    bounded; the blocks' results merged by a max-heap)."""
    faiss = import_faiss()
    queries = np.ascontiguousarray(queries, np.float32)
    results = faiss.ResultHeap(len(queries), k, keep_max=True)
    for first in range(0, len(embeds), block):
        flat = faiss.IndexFlatIP(embeds.shape[1])
        flat.add(np.ascontiguousarray(embeds[first:first + block], np.float32))
        dist, ids = flat.search(queries, min(k, flat.ntotal))
        results.add_result(dist, np.where(ids >= 0, ids + first, -1))
    results.finalize()
    return results.I


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of each query's exact top ``k`` among its found top ``k``
    (autofaiss's and ann-benchmarks' k-NN recall)."""
    hits = [len(set(f[:k]) & set(t[:k])) for f, t in zip(found, truth)]
    return float(np.mean(hits) / k)


def tune_search_params(index,
                       embeds: np.ndarray,
                       queries: np.ndarray,
                       target_recall: float = DEFAULT_TARGET_RECALL,
                       k: int = 10,
                       margin: int = SHORTLIST_MARGIN,
                       truth: Optional[np.ndarray] = None) -> dict:
    """The cheapest search setting whose recall@k reaches ``target_recall``
    (the most exact one when none does), set on ``index``.

    Returns:
        dict: ``params``, ``recall_at_10`` (at those params), ``target``,
        ``queries`` (count) and ``curve`` (recall of every setting tried).
    """
    if truth is None:
        truth = exact_topk(embeds, queries, k)
    curve = []
    for params in search_param_grid(index):
        set_search_params(index, params)
        found = served_topk(index, embeds, queries, k, margin)
        recall = recall_at_k(found, truth, k)
        curve.append(dict(params=params, recall=round(recall, 4)))
        if recall >= target_recall:
            break
    best = curve[-1]
    return dict(
        params=best['params'],
        recall_at_10=best['recall'],
        target=target_recall,
        queries=len(queries),
        curve=curve)
