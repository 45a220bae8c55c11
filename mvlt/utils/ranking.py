"""ITC similarity, top-k selection, ITM re-ranking and the resulting
order, in NumPy only (torch-free).

Each function is the one implementation of its step: the retrieval test
loop, :class:`mvlt.apis.MVLTInferencer`, the catalogue search and the ONNX
Runtime serving path call them (through
``mvlt.models.utils.retrieval`` on the model side).
"""
from typing import Optional, Tuple

import numpy as np


def itc_similarity(query_embeds: np.ndarray,
                   gallery_embeds: np.ndarray) -> np.ndarray:
    """Cosine similarities of L2-normalised ITC embeddings.

    Args:
        query_embeds (np.ndarray): (Q, D) or (D,) for one query.
        gallery_embeds (np.ndarray): (C, D).

    Returns:
        np.ndarray: (Q, C) float32 (a single query gives (1, C)).
    """
    query = np.atleast_2d(np.asarray(query_embeds, np.float32))
    return query @ np.asarray(gallery_embeds, np.float32).T


def topk_candidates(similarity: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` highest ITC similarities.

    Args:
        similarity (np.ndarray): (Q, C) query x candidate similarities.
        k (int): Candidates kept per query (capped at C).

    Returns:
        np.ndarray: (Q, min(k, C)) int64, best first; ties are resolved by
        column order (stable), so the choice is deterministic.
    """
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}.')
    similarity = np.asarray(similarity)
    k = min(k, similarity.shape[1])
    return np.argsort(-similarity, axis=1, kind='stable')[:, :k]


def rerank(similarity: np.ndarray, shortlist: np.ndarray,
           itm_scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """ITC -> ITM re-ranking: the shortlisted candidates, scored by ITM,
    rank above every other candidate, which keep their ITC order.

    Args:
        similarity (np.ndarray): (Q, C) ITC similarities.
        shortlist (np.ndarray): (Q, k) columns from :func:`topk_candidates`.
        itm_scores (np.ndarray): (Q, k) ITM matching probabilities of the
            shortlisted pairs.

    Returns:
        tuple: ``scores`` (Q, C) float32 (ITM where shortlisted, ITC
        elsewhere) and ``tiers`` (Q, C) int64 (1 = shortlisted, 0 = not), to
        be ordered by tier first, then score (:func:`rank_order`,
        :func:`mvlt.evaluation.positive_ranks`).
    """
    scores = np.array(similarity, dtype=np.float32, copy=True)
    tiers = np.zeros(scores.shape, np.int64)
    np.put_along_axis(scores, shortlist, np.asarray(itm_scores, np.float32), 1)
    np.put_along_axis(tiers, shortlist, 1, 1)
    return scores, tiers


def rank_order(scores: np.ndarray,
               tiers: Optional[np.ndarray] = None,
               k: Optional[int] = None) -> np.ndarray:
    """Candidates of each query ordered best first.

    Higher tier first, then higher score; equal keys keep column order.

    Args:
        scores (np.ndarray): (Q, C) scores (or (C,) for one query).
        tiers (np.ndarray, optional): Same shape, int tiers.
        k (int, optional): Keep only the first k columns of the order.

    Returns:
        np.ndarray: int64 column indices, (Q, min(k, C)) (or (min(k, C),)).
    """
    scores = np.asarray(scores, np.float64)
    keys = (-scores, ) if tiers is None else (-scores, -np.asarray(tiers))
    order = np.lexsort(keys, axis=-1)
    return order if k is None else order[..., :k]
