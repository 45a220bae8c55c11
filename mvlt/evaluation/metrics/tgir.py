"""The FashionIQ protocol of text-guided image retrieval (TGIR): R@10 and
R@50 per category over that category's validation images, and their mean.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from mvlt.registry import METRICS
from .retrieval import ArrayLike, _to_numpy, positive_ranks, recall_at_k

#: The query embeddings a TGIR evaluation ranks with: the joint (reference
#: image, modification text) pass, and the two baselines (the text alone
#: through the ITC text tower, the reference image alone through the ITC
#: image tower).
METHODS = ('composed', 'text-only', 'image-only')


def composed_ranks(similarity: ArrayLike, target_cols: ArrayLike,
                   reference_cols: ArrayLike) -> np.ndarray:
    """1-based rank of each query's target among its gallery.

    The reference image is removed from its own candidates (where it is in
    the gallery and is not itself the target): a query cannot be answered
    by the image it started from, which the image-only baseline would
    otherwise rank first. Ties count against the target (no credit for a
    tie): the rank is 1 + the number of other remaining candidates whose
    similarity is >= the target's (:func:`positive_ranks`).

    Args:
        similarity (array): (Q, C) query x gallery similarities.
        target_cols (array): (Q,) gallery column of each target.
        reference_cols (array): (Q,) gallery column of each reference; -1
            where the reference is not in the gallery.

    Returns:
        np.ndarray: (Q,) int64 ranks in [1, C].

    Raises:
        ValueError: A target column outside the gallery, NaN similarities
            or mismatched shapes.
    """
    scores = _to_numpy(similarity).astype(np.float64, copy=True)
    targets = _to_numpy(target_cols).astype(np.int64)
    references = _to_numpy(reference_cols).astype(np.int64)
    if scores.ndim != 2 or targets.shape != (scores.shape[0], ) or \
            references.shape != targets.shape:
        raise ValueError(
            f'composed_ranks: similarity (Q, C) with (Q,) target and '
            f'reference columns, got {scores.shape}, {targets.shape}, '
            f'{references.shape}.')
    if ((targets < 0) | (targets >= scores.shape[1])).any():
        raise ValueError('composed_ranks: a target column is outside the '
                         f'gallery of {scores.shape[1]} images.')
    rows = np.arange(scores.shape[0])
    positives = np.zeros(scores.shape, bool)
    positives[rows, targets] = True
    removed = (references >= 0) & (references != targets)
    # -inf never reaches a finite target score, so the reference neither
    # counts as a candidate above the target nor as a tie.
    scores[rows[removed], references[removed]] = -np.inf
    return positive_ranks(scores, positives)


@METRICS.register_module()
class FashionIQMetric(BaseMetric):
    """R@K per category and their mean, per query embedding method.

    Each processed item is one ranked query: a dict with ``method`` (of
    :data:`METHODS` or another label), ``category``, ``query_id`` (one
    rank per id counts) and ``rank`` (1-based, from
    :func:`composed_ranks`). Reported names are
    ``tgir/<method>/<category>/R@K`` and ``tgir/<method>/mean/R@K``, the
    mean being over the categories (FashionIQ's "average"), so
    ``tools/test.py`` prints one row per (category, method).

    Args:
        topk (Sequence[int]): The K of R@K (10 and 50: FashionIQ's).
        collect_device (str): 'cpu' or 'gpu' for result collection.
        prefix (str, optional): Metric name prefix (default ``tgir``).
    """

    default_prefix = 'tgir'

    def __init__(self,
                 topk: Sequence[int] = (10, 50),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(int(k) for k in topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store (method, category, query_id, rank) of each ranked query."""
        for sample in data_samples:
            missing = [
                k for k in ('method', 'category', 'query_id', 'rank')
                if sample.get(k) is None
            ]
            if missing:
                raise KeyError(f'FashionIQMetric: an item lacks {missing}; '
                               "test with test_cfg=dict(type='TGIRTestLoop')"
                               '.')
            self.results.append(
                dict(
                    method=str(sample['method']),
                    category=str(sample['category']),
                    query_id=sample['query_id'],
                    rank=int(sample['rank'])))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """R@K per (method, category) and the mean over categories."""
        groups: 'OrderedDict[str, OrderedDict]' = OrderedDict()
        for result in results:
            ranks = groups.setdefault(result['method'],
                                      OrderedDict()).setdefault(
                                          result['category'], {})
            ranks[result['query_id']] = result['rank']
        metrics: Dict[str, float] = OrderedDict()
        for method, categories in groups.items():
            per_category = {
                category:
                recall_at_k(np.fromiter(ranks.values(), np.int64), self.topk)
                for category, ranks in categories.items()
            }
            for category, recalls in per_category.items():
                for name, value in recalls.items():
                    metrics[f'{method}/{category}/{name}'] = value
            for k in self.topk:
                metrics[f'{method}/mean/R@{k}'] = float(
                    np.mean([r[f'R@{k}'] for r in per_category.values()]))
        return metrics
