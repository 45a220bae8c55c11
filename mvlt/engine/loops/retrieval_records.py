"""Per-query records of the retrieval loop.

A record is what the evaluator (:class:`mvlt.evaluation.RetrievalMetric`)
and the result hooks (figures) read about one ranked query: ``protocol``,
``split``, ``direction``, ``query_id``, ``query_row``, ``rank`` (1-based,
of the best positive), ``positive_row`` and the ``topk_rows`` /
``topk_scores`` / ``topk_positive`` of the best candidates.
"""
from typing import List

import numpy as np

from mvlt.evaluation.metrics.retrieval import positive_ranks
from mvlt.models.utils import Ranking


def ranked_records(name: str,
                   split: str,
                   direction: str,
                   query_rows: np.ndarray,
                   candidate_rows: np.ndarray,
                   ranking: Ranking,
                   positives: np.ndarray,
                   keep_topk: int,
                   query_offset: int = 0) -> List[dict]:
    """Records of queries whose candidates' scores are all at hand.

    Args:
        name, split, direction (str): Labels of the records.
        query_rows (np.ndarray): (Q,) data-set rows of the queries.
        candidate_rows (np.ndarray): (C,) rows shared by every query, or
            (Q, C) rows per query.
        ranking (Ranking): :func:`mvlt.models.utils.rank_candidates` of the
            queries, made with ``positives`` (so that the order follows the
            tie rule of the ranks: a top-k never shows a hit the rank
            counts as a miss).
        positives (np.ndarray): (Q, C) bool.
        keep_topk (int): Best candidates kept per query.
        query_offset (int): ``query_id`` of the first query.
    """
    scores, order = ranking.scores, ranking.order
    ranks = positive_ranks(scores, positives, ranking.tiers)
    records = []
    for q in range(len(query_rows)):
        cand = candidate_rows if candidate_rows.ndim == 1 else \
            candidate_rows[q]
        top = order[q, :keep_topk]
        best = order[q][positives[q, order[q]]][0]
        records.append(
            dict(
                protocol=name,
                split=split,
                direction=direction,
                query_id=query_offset + q,
                query_row=int(query_rows[q]),
                rank=int(ranks[q]),
                positive_row=int(cand[best]),
                topk_rows=cand[top].tolist(),
                topk_scores=scores[q, top].tolist(),
                topk_positive=positives[q, top].tolist()))
    return records


def gallery_records(name: str, split: str, direction: str,
                    query_rows: np.ndarray, ranks: np.ndarray,
                    positive_rows: np.ndarray, topk_rows: np.ndarray,
                    topk_scores: np.ndarray,
                    topk_positive: np.ndarray) -> List[dict]:
    """Records of full-gallery queries ranked by reductions over processes.

    Args:
        query_rows (np.ndarray): (Q,) data-set rows of the queries.
        ranks (np.ndarray): (Q,) 1-based rank of the best positive.
        positive_rows (np.ndarray): (Q,) row of that positive.
        topk_rows (np.ndarray): (Q, k) rows of the top candidates.
        topk_scores (np.ndarray): (Q, k) their scores.
        topk_positive (np.ndarray): (Q, k) bool, whether each is positive.
    """
    return [
        dict(
            protocol=name,
            split=split,
            direction=direction,
            query_id=q,
            query_row=int(query_rows[q]),
            rank=int(ranks[q]),
            positive_row=int(positive_rows[q]),
            topk_rows=topk_rows[q].tolist(),
            topk_scores=topk_scores[q].tolist(),
            topk_positive=topk_positive[q].tolist())
        for q in range(len(query_rows))
    ]
