"""ITC similarity, top-k selection, ITM re-ranking, the one order and
``rank_candidates``, in NumPy only (torch-free).

Each function is the one implementation of its step: the retrieval test
loop, :class:`mvlt.apis.MVLTInferencer`, the catalogue search and the ONNX
Runtime serving path call them (through ``mvlt.models.utils`` on the model
side).
"""
from typing import Callable, List, NamedTuple, Optional, Tuple, Union

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


def paired_itc_similarity(caption_embeds: np.ndarray,
                          image_embeds: np.ndarray) -> np.ndarray:
    """ITC similarity of caption ``i`` with image ``i`` (row-wise dot
    products), for candidate lists whose pairs are given row by row.

    Args:
        caption_embeds (np.ndarray): (N, D) L2-normalised caption embeddings.
        image_embeds (np.ndarray): (N, D) L2-normalised image embeddings.

    Returns:
        np.ndarray: (N,) float32 cosine similarities.
    """
    return np.einsum('nd,nd->n', np.asarray(caption_embeds, np.float32),
                     np.asarray(image_embeds, np.float32))


def rank_order(scores: np.ndarray,
               tiers: Optional[np.ndarray] = None,
               k: Optional[int] = None,
               positives: Optional[np.ndarray] = None) -> np.ndarray:
    """Candidates of each query ordered best first, by the one tie rule.

    Tie rule (the same for ranks and for the displayed order, see
    docs/architecture.md "Ranking"): higher tier first, then higher score;
    among equal (tier, score) a positive goes after the non-positives (ties
    count against the positive, as in
    :func:`mvlt.evaluation.positive_ranks`), then the lower column first.
    So the 1-based position of the first positive in this order is the
    rank that :func:`mvlt.evaluation.positive_ranks` reports.

    Args:
        scores (np.ndarray): (Q, C) scores (or (C,) for one query).
        tiers (np.ndarray, optional): Same shape, int tiers.
        k (int, optional): Keep only the first k columns of the order.
        positives (np.ndarray, optional): Same shape, bool; None when
            which candidates match is unknown (search, inference).

    Returns:
        np.ndarray: int64 column indices, (Q, min(k, C)) (or (min(k, C),)).
    """
    scores = np.asarray(scores, np.float64)
    keys = [-scores]
    if tiers is not None:
        keys.append(-np.asarray(tiers))
    if positives is not None:
        keys.insert(0, np.asarray(positives, bool).astype(np.int8))
    # np.lexsort sorts by the last key first and is stable (column order).
    order = np.lexsort(keys, axis=-1)
    return order if k is None else order[..., :k]


class Ranking(NamedTuple):
    """Result of :func:`rank_candidates` for Q queries over C candidates.

    Attributes:
        scores (np.ndarray): (Q, C) float32: ITM probability where ITM
            scored the candidate, ITC similarity elsewhere.
        tiers (np.ndarray | None): (Q, C) int64, 1 = re-scored by ITM above
            the ITC-ordered rest (0); None when one score kind ranks all.
        order (np.ndarray): (Q, min(topk, C)) int64 columns, best first.
        kind (str): ``'itm'`` or ``'itc'``, the score of every candidate
            when ``tiers`` is None.
    """
    scores: np.ndarray
    tiers: Optional[np.ndarray]
    order: np.ndarray
    kind: str

    def hits(self, query: int = 0) -> List[Tuple[int, float, str]]:
        """``(column, score, by)`` of one query's ranked candidates, best
        first; ``by`` is ``'itm'`` or ``'itc'``."""
        return [(int(c), float(self.scores[query, c]),
                 self.kind if self.tiers is None else
                 ('itm' if self.tiers[query, c] else 'itc'))
                for c in self.order[query]]


ItmScores = Union[np.ndarray, Callable[[np.ndarray], np.ndarray]]


def rank_candidates(itm: Optional[ItmScores],
                    similarity: Optional[np.ndarray] = None,
                    rerank_k: Optional[int] = None,
                    topk: Optional[int] = None,
                    positives: Optional[np.ndarray] = None,
                    shape: Optional[Tuple[int, int]] = None,
                    shortlist: Optional[np.ndarray] = None) -> Ranking:
    """The one ranking of retrieval: ITC shortlist, ITM re-rank, order.

    Used by the retrieval test loop, :class:`mvlt.apis.MVLTInferencer` and
    :class:`mvlt.apis.CatalogueSearch`. Three cases:

    * ``similarity`` None: exact ITM, every candidate scored by ITM (``shape``
      gives (Q, C)).
    * ``rerank_k`` 0 (or ``itm`` None): ITC similarity alone.
    * otherwise: each query's ITC top ``rerank_k``
      (:func:`topk_candidates`) are re-scored by ITM and rank above the rest,
      which keep their ITC order (:func:`rerank`).

    The order follows :func:`rank_order`'s tie rule.

    Args:
        itm: ITM probabilities of the shortlisted pairs: a function mapping
            the (Q, k) shortlisted columns to (Q, k) scores, or those scores
            when ``shortlist`` is given.
        similarity (np.ndarray, optional): (Q, C) ITC similarities.
        rerank_k (int, optional): Candidates per query that ITM re-scores
            (None: all of them).
        topk (int, optional): Length of the returned order (None: all).
        positives (np.ndarray, optional): (Q, C) bool, for the tie rule.
        shape (tuple, optional): (Q, C) when ``similarity`` is None.
        shortlist (np.ndarray, optional): (Q, k) columns already chosen by
            :func:`topk_candidates` (a caller that scores the shortlists of
            several rankings in one pass).

    Returns:
        Ranking: scores, tiers, order and score kind.

    Raises:
        ValueError: Neither ``similarity`` nor ``shape``, or no ITM scores
            where they are needed.
    """
    if similarity is None:
        if shape is None:
            raise ValueError('rank_candidates: exact ITM ranking needs the '
                             '(Q, C) shape of its candidates.')
        if itm is None:
            raise ValueError('rank_candidates: no ITC similarity and no ITM '
                             'scores to rank by.')
        columns = np.broadcast_to(np.arange(shape[1]), tuple(shape))
        scores = itm(columns) if callable(itm) else itm
        scores = np.asarray(scores, np.float32).reshape(shape)
        return Ranking(scores, None, rank_order(scores, None, topk, positives),
                       'itm')
    similarity = np.atleast_2d(np.asarray(similarity, np.float32))
    if itm is None or rerank_k == 0:
        return Ranking(similarity, None,
                       rank_order(similarity, None, topk, positives), 'itc')
    if shortlist is None:
        shortlist = topk_candidates(similarity, rerank_k
                                    or similarity.shape[1])
    scores = itm(shortlist) if callable(itm) else itm
    scores, tiers = rerank(similarity, shortlist,
                           np.asarray(scores).reshape(shortlist.shape))
    return Ranking(scores, tiers, rank_order(scores, tiers, topk, positives),
                   'itm')
