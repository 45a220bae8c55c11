"""Retrieval metrics: R@K and SumR for text->image (TIR) and image->text
(ITR) ranking (paper section 3.3)."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mvlt.registry import METRICS

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]

#: Direction name -> task label used in the reported metric names.
DIRECTION_TASKS = OrderedDict(text_to_image='TIR', image_to_text='ITR')


def _to_numpy(value: ArrayLike) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def positive_ranks(scores: ArrayLike,
                   positives: ArrayLike,
                   tiers: Optional[ArrayLike] = None) -> np.ndarray:
    """1-based rank of the best positive candidate of each query.

    Ties count against the positive (no credit for a tie): the rank is
    ``1 + the number of non-positive candidates whose score is >= the best
    positive score``. Other positives of the same query (for example the
    other captions of a COCO image) do not push the best one down, so R@K is
    "at least one positive in the top K".

    Which candidates are positives is the caller's: the retrieval loop
    (:meth:`mvlt.datasets.retrieval_protocol.ProtocolRows.matches`) also
    marks the candidates of another product whose caption is identical to
    the query's positive caption after the tokenizer's normalisation (a
    re-listed item, a colourway), so the tie of two identical captions is
    not counted against the positive; with
    ``RetrievalTestLoop(identical_captions='negative')`` only the query's
    own product is positive (the naive count).

    Args:
        scores (array): (Q, C) float scores; higher = better match.
            ``-inf`` marks a candidate that was not scored (it ranks last).
        positives (array): (Q, C) bool, True where the candidate matches.
        tiers (array, optional): (Q, C) int; a candidate of a higher tier
            ranks above every candidate of a lower tier, scores order the
            candidates within a tier (re-ranking: the top-k re-scored by ITM
            form tier 1, the rest keep their ITC order in tier 0).

    Returns:
        np.ndarray: (Q,) int64 ranks in [1, C].

    Raises:
        ValueError: A query without a positive, a NaN score, or mismatched
            shapes.
    """
    scores = _to_numpy(scores).astype(np.float64, copy=False)
    positives = _to_numpy(positives).astype(bool, copy=False)
    if scores.ndim != 2 or scores.shape != positives.shape:
        raise ValueError('positive_ranks: scores and positives must both be '
                         f'(Q, C); got {scores.shape} and {positives.shape}.')
    if np.isnan(scores).any():
        row = int(np.isnan(scores).any(axis=1).argmax())
        raise ValueError(f'positive_ranks: query {row} has NaN scores; the '
                         'model produced non-finite outputs.')
    has_positive = positives.any(axis=1)
    if not has_positive.all():
        row = int((~has_positive).argmax())
        raise ValueError(f'positive_ranks: query {row} has no positive '
                         'candidate; every query needs its match among the '
                         'candidates.')
    if tiers is None:
        best = best_positive_scores(scores, positives)
        return 1 + count_beaten(scores, positives, best)
    tiers = _to_numpy(tiers).astype(np.int64, copy=False)
    if tiers.shape != scores.shape:
        raise ValueError(f'positive_ranks: tiers {tiers.shape} must match '
                         f'scores {scores.shape}.')
    lowest = np.iinfo(np.int64).min
    best_tier = np.where(positives, tiers, lowest).max(axis=1, keepdims=True)
    in_best_tier = positives & (tiers == best_tier)
    best = np.where(in_best_tier, scores, -np.inf).max(axis=1, keepdims=True)
    beaten = ((tiers > best_tier) | ((tiers == best_tier) & (scores >= best)))
    beaten &= ~positives
    return 1 + beaten.sum(axis=1).astype(np.int64)


def best_positive_scores(scores: ArrayLike,
                         positives: ArrayLike) -> np.ndarray:
    """Highest score among each query's positives (-inf where none).

    With :func:`count_beaten` this is :func:`positive_ranks` in two steps,
    so that a query whose candidates are split across processes is ranked
    by reducing these partial results (max, then sum).

    Args:
        scores (array): (Q, C) float scores.
        positives (array): (Q, C) bool.

    Returns:
        np.ndarray: (Q,) float64.
    """
    scores = _to_numpy(scores).astype(np.float64, copy=False)
    positives = _to_numpy(positives).astype(bool, copy=False)
    if scores.shape[1] == 0:
        return np.full(scores.shape[0], -np.inf)
    return np.where(positives, scores, -np.inf).max(axis=1)


def count_beaten(scores: ArrayLike, positives: ArrayLike,
                 best: ArrayLike) -> np.ndarray:
    """Per query, the non-positive candidates scoring >= ``best``.

    Ties count against the positive: ``1 + count_beaten(...)`` is the rank
    of the best positive.

    Args:
        scores (array): (Q, C) float scores.
        positives (array): (Q, C) bool.
        best (array): (Q,) best positive score of each query.

    Returns:
        np.ndarray: (Q,) int64.
    """
    scores = _to_numpy(scores).astype(np.float64, copy=False)
    positives = _to_numpy(positives).astype(bool, copy=False)
    best = _to_numpy(best).astype(np.float64, copy=False)
    beaten = (scores >= best[:, None]) & ~positives
    return beaten.sum(axis=1).astype(np.int64)


def recall_at_k(ranks: ArrayLike, topk: Sequence[int]) -> Dict[str, float]:
    """R@K in percent: the share of queries whose positive ranks <= K."""
    ranks = _to_numpy(ranks)
    if ranks.size == 0:
        raise ValueError('recall_at_k: no query was ranked.')
    return {f'R@{k}': float((ranks <= k).mean() * 100.0) for k in topk}


@METRICS.register_module()
class RetrievalMetric(BaseMetric):
    """R@1 / R@5 / R@10 and SumR = (R@5 + R@10) x 100 per direction.

    R@K is reported in percent (as in the paper's tables), so SumR is the sum
    of the two percentages. A query's rank follows :func:`positive_ranks`:
    ties in the retrieval scores are broken against the positive, i.e. a
    negative with the same score as the positive ranks above it. A caption
    identical (after the tokenizer's normalisation) to the positive's, of
    another product, is a positive, not a negative: by default the
    retrieval loop marks it so (``positives`` / ``rank`` of the items), and
    the candidate protocol never draws it as a negative;
    ``identical_captions='negative'`` (loop and
    ``tools/misc/make_retrieval_protocol.py``) gives the naive protocol of
    published numbers.

    Each processed item is one ranked query: a dict (or data element) with
    ``direction`` (``'text_to_image'`` / ``'image_to_text'``), ``query_id``
    (used to drop duplicates that distributed padding adds) and either
    ``rank`` (1-based) or ``scores`` (C,) with ``positives`` (C,) bool.
    Optional ``protocol`` and ``split`` fields label the reported names:
    ``retrieval/<protocol>/<split>/<TIR|ITR>/<R@K|SumR>``; the metric's own
    ``protocol`` / ``split`` arguments are the defaults.

    Args:
        topk (Sequence[int]): The K of R@K.
        protocol (str): Protocol label when items carry none (e.g.
            ``'fashiongen-101'``, ``'coco-5k-full'``).
        split (str): Split label when items carry none.
        sum_keys (Sequence[int]): The K summed into SumR (5 and 10).
        collect_device (str): 'cpu' or 'gpu' for result collection.
        prefix (str, optional): Metric name prefix (default ``retrieval``).
    """

    default_prefix = 'retrieval'

    def __init__(self,
                 topk: Sequence[int] = (1, 5, 10),
                 protocol: str = 'retrieval',
                 split: str = 'test',
                 sum_keys: Sequence[int] = (5, 10),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        missing = [k for k in sum_keys if k not in topk]
        if missing:
            raise ValueError(f'RetrievalMetric: sum_keys {missing} must be '
                             f'among topk {tuple(topk)}.')
        self.topk = tuple(int(k) for k in topk)
        self.sum_keys = tuple(int(k) for k in sum_keys)
        self.protocol = protocol
        self.split = split

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Store (label, direction, query_id, rank) of each ranked query."""
        for sample in data_samples:
            get = sample.get
            direction = get('direction')
            if direction not in DIRECTION_TASKS:
                raise KeyError(
                    f'RetrievalMetric: item direction {direction!r} is not '
                    f'one of {tuple(DIRECTION_TASKS)}; test with '
                    "test_cfg=dict(type='RetrievalTestLoop', ...).")
            rank = get('rank')
            if rank is None:
                if get('scores') is None or get('positives') is None:
                    raise KeyError('RetrievalMetric: an item needs rank, or '
                                   'scores and positives.')
                rank = positive_ranks(
                    _to_numpy(get('scores'))[None],
                    _to_numpy(get('positives'))[None])[0]
            self.results.append(
                dict(
                    protocol=get('protocol') or self.protocol,
                    split=get('split') or self.split,
                    direction=direction,
                    query_id=get('query_id'),
                    rank=int(rank)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """R@K and SumR per (protocol, split, direction)."""
        groups: 'OrderedDict[tuple, dict]' = OrderedDict()
        for result in results:
            key = (result['protocol'], result['split'], result['direction'])
            ranks = groups.setdefault(key, {})
            query_id = result['query_id']
            # Distributed padding repeats items; one rank per query counts.
            ranks[len(ranks) if query_id is None else query_id] = \
                result['rank']
        metrics: Dict[str, float] = OrderedDict()
        order = list(DIRECTION_TASKS)
        for key in sorted(
                groups, key=lambda k: (k[0], k[1], order.index(k[2]))):
            protocol, split, direction = key
            recalls = recall_at_k(
                np.fromiter(groups[key].values(), np.int64), self.topk)
            name = f'{protocol}/{split}/{DIRECTION_TASKS[direction]}'
            for metric, value in recalls.items():
                metrics[f'{name}/{metric}'] = value
            metrics[f'{name}/SumR'] = sum(recalls[f'R@{k}']
                                          for k in self.sum_keys)
        return metrics
