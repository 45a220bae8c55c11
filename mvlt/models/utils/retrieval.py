"""Retrieval on top of the model's scoring API: batching, ITC top-k
selection, ITM re-ranking and the resulting order.

Each function here is the one implementation of its step; the retrieval
test loop, :class:`mvlt.apis.MVLTInferencer` and the catalogue search all
call them (as mmpretrain keeps BLIP's retrieval scoring on the model side).
"""
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch


def run_in_batches(fn: Callable[..., torch.Tensor],
                   tensors: Sequence[torch.Tensor],
                   batch_size: Optional[int] = None) -> torch.Tensor:
    """``fn(*tensors)`` computed ``batch_size`` rows at a time.

    The last batch is padded to ``batch_size`` with copies of its first row
    and the padding's outputs dropped: every call then sees the same shapes,
    and on CPU a row's output is bitwise the same whatever rows surround it.

    Args:
        fn (callable): Maps tensors with a common first dimension B to a
            tensor whose first dimension is B.
        tensors (Sequence[Tensor]): Inputs, first dimension N.
        batch_size (int, optional): Rows per call; None = one call.

    Returns:
        Tensor: The outputs concatenated, first dimension N.

    Raises:
        ValueError: No rows, or inputs with different numbers of rows.
    """
    num = tensors[0].shape[0]
    if num == 0 or any(t.shape[0] != num for t in tensors):
        raise ValueError('run_in_batches needs inputs with the same, '
                         f'non-zero number of rows, got '
                         f'{[tuple(t.shape) for t in tensors]}.')
    if batch_size is None:
        return fn(*tensors)
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    outputs = []
    for start in range(0, num, batch_size):
        chunk = [t[start:start + batch_size] for t in tensors]
        count = chunk[0].shape[0]
        if count < batch_size:
            chunk = [
                torch.cat([c, c[:1].expand(batch_size - count, *c.shape[1:])])
                for c in chunk
            ]
        outputs.append(fn(*chunk)[:count])
    return torch.cat(outputs)


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
