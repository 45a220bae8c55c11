"""Which ranking a catalogue's search should use, measured on its own
captions when its index is built.

Three rankings of a text query's gallery images are compared:

* ``itc``: ITC cosine similarity alone;
* ``itm``: the ITC top k' re-ranked by the ITM matching probability, the
  rest below in ITC order (ALBEF / the paper's retrieval protocol);
* ``fused``: the ITC top k' re-ranked by ITM probability + ITC similarity,
  as BLIP sums the two scores of its shortlist.

On the demo gallery ITM re-ranking made results worse than ITC alone (R@1
28-35 against 79), so no ranking is assumed: :func:`measure_ranking` takes
a held-out sample of the gallery's captions as queries (their own product's
photos are the positives), measures R@1 / R@5 / R@10 of each ranking and
records the best as the index's default (:func:`default_rerank_k` turns it
into the page's k'). Ties go to ITC (it needs no ITM pass).
Every ranking is made by the one ranking function,
:func:`mvlt.utils.ranking.rank_candidates`.
"""
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from mvlt.utils.ranking import itc_similarity, rank_candidates, topk_candidates
from .ann_index import exact_topk

#: The order ties are broken in: ITC first (no ITM pass), then ITM (the
#: paper's protocol), then the fused score.
RANKINGS = ('itc', 'itm', 'fused')
RECALL_KS = (1, 5, 10)
#: Held-out captions measured by default: each costs k' ITM pairs.
DEFAULT_QUERIES = 100
#: ITM pairs scored per call when measuring (:func:`score_shortlists`).
SCORE_BLOCK = 256


def shortlist_scores(similarity: np.ndarray, shortlist: np.ndarray,
                     itm: np.ndarray, ranking: str) -> Optional[np.ndarray]:
    """The scores one ranking re-ranks the ITC shortlist by, for
    :func:`mvlt.utils.ranking.rank_candidates`: None (ITC alone), the ITM
    probabilities, or ITM probability + ITC similarity (fused).

    Args:
        similarity: (Q, C) ITC similarities.
        shortlist: (Q, k) columns of the ITC top k (``topk_candidates``).
        itm: (Q, k) ITM probabilities of the shortlisted pairs.
        ranking: One of :data:`RANKINGS`.

    Raises:
        ValueError: An unknown ranking.
    """
    if ranking == 'itc':
        return None
    if ranking == 'itm':
        return itm
    if ranking == 'fused':
        return itm + np.take_along_axis(similarity, shortlist, 1)
    raise ValueError(f'Unknown ranking {ranking!r}; one of {RANKINGS}.')


def compare_rankings(similarity: np.ndarray, positives: Sequence[set],
                     itm_of: Callable[[int, np.ndarray], np.ndarray],
                     rerank_k: int) -> dict:
    """R@K of every ranking over queries with known positive columns.

    Args:
        similarity: (Q, C) ITC similarities of the queries and candidates.
        positives: Per query, the columns that are right answers.
        itm_of: ``(query, columns) -> (len(columns),)`` ITM probabilities.
        rerank_k: k' of the re-rankings.

    Returns:
        dict: ``recall`` (ranking -> ``R@1`` / ``R@5`` / ``R@10`` in %),
        ``default`` (the best by R@1, then R@5, then R@10; ties in the
        order of :data:`RANKINGS`), ``queries`` and ``rerank_k``.
    """
    hits: Dict[str, List[List[bool]]] = {r: [] for r in RANKINGS}
    for q in range(len(similarity)):
        row = similarity[q:q + 1]
        shortlist = topk_candidates(row, rerank_k)
        itm = np.asarray(itm_of(q, shortlist[0]), np.float32)[None]
        for ranking in RANKINGS:
            order = rank_candidates(
                shortlist_scores(row, shortlist, itm, ranking),
                row,
                rerank_k,
                topk=max(RECALL_KS),
                shortlist=shortlist).order[0]
            hits[ranking].append(
                [bool(set(order[:k].tolist()) & positives[q])
                 for k in RECALL_KS])
    recall = {
        ranking: {
            f'R@{k}': round(100 * float(np.mean([h[i] for h in rows])), 2)
            for i, k in enumerate(RECALL_KS)
        }
        for ranking, rows in hits.items()
    }
    default = max(
        RANKINGS,
        key=lambda r: (tuple(recall[r][f'R@{k}']
                             for k in RECALL_KS), -RANKINGS.index(r)))
    return dict(
        recall=recall,
        default=default,
        queries=len(similarity),
        rerank_k=rerank_k)


def measure_ranking(inferencer,
                    gallery,
                    items: Sequence[dict],
                    image_embeds: np.ndarray,
                    num_queries: int = DEFAULT_QUERIES,
                    rerank_k: int = 16,
                    seed: int = 0) -> Optional[dict]:
    """:func:`compare_rankings` on a held-out sample of a gallery's distinct
    captions (the queries; the photos of the products that carry the
    caption are the positives), or None without an ITM head.

    Only the exact ITC top max(k', 10) of each query are scored: R@10 and
    the re-rankings need no more.
    """
    if not inferencer.has_itm or num_queries < 1:
        return None
    captions: Dict[str, set] = {}
    products: Dict[str, List[int]] = {}
    for row, item in enumerate(items):
        products.setdefault(item['product_id'], []).append(row)
    for item in items:
        captions.setdefault(item['caption'], set()).update(
            products[item['product_id']])
    texts = sorted(captions)
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(texts), min(num_queries, len(texts)),
                             replace=False))
    queries = [texts[i] for i in pick]
    query_embeds = inferencer.embed_captions(queries)
    width = min(len(items), max(rerank_k, max(RECALL_KS)))
    columns = exact_topk(image_embeds, query_embeds, width)
    similarity = np.stack([
        itc_similarity(e, np.asarray(image_embeds[c]))[0]
        for e, c in zip(query_embeds, columns)
    ])
    positives = [{
        j
        for j, row in enumerate(c) if row in captions[text]
    } for text, c in zip(queries, columns)]

    rerank_k = min(rerank_k, width)
    itm = score_shortlists(inferencer, gallery, queries, columns, similarity,
                           rerank_k)

    def itm_of(q: int, picked: np.ndarray) -> np.ndarray:
        return itm[q, picked]

    return compare_rankings(similarity, positives, itm_of, rerank_k)


def score_shortlists(inferencer,
                     gallery,
                     queries: Sequence[str],
                     columns: np.ndarray,
                     similarity: np.ndarray,
                     rerank_k: int,
                     block: int = SCORE_BLOCK) -> np.ndarray:
    """ITM probabilities of every query's ITC top ``rerank_k`` (the
    shortlist :func:`compare_rankings` re-ranks), scored together in blocks
    of about ``block`` pairs, each gallery image of a block read once.

    Every call is padded to the inferencer's batch size
    (:func:`mvlt.models.utils.run_in_batches`, so that a pair's output is
    bitwise the same whatever pairs surround it): one query's 16 pairs
    scored alone cost a whole batch of 64. Measured on the demo model (one
    thread, 2-core AMD EPYC, shared): 8.0-9.6 ms a pair one query at a
    time against 1.9-2.5 ms in full batches, the same probabilities; the
    build's ranking measurement of 100 queries fell from 15.0-17.3 s to
    5.6-7.2 s.

    Args:
        inferencer: The model (``score``).
        gallery: The images (``read_many``).
        queries: Q caption queries.
        columns: (Q, W) gallery rows of each query's exact ITC top W.
        similarity: (Q, W) their ITC similarities.
        rerank_k: Shortlist length (<= W).
        block: Pairs scored per call (bounds the images held at once).

    Returns:
        np.ndarray: (Q, W) float32; the shortlisted positions hold the ITM
        probability, the others NaN.
    """
    scores = np.full(columns.shape, np.nan, np.float32)
    pairs = [(q, int(p)) for q in range(len(queries))
             for p in topk_candidates(similarity[q:q + 1], rerank_k)[0]]
    for start in range(0, len(pairs), block):
        part = pairs[start:start + block]
        rows = sorted({int(columns[q, p]) for q, p in part})
        images = dict(zip(rows, gallery.read_many(rows)))
        probs = inferencer.score([images[int(columns[q, p])] for q, p in part],
                                 [queries[q] for q, _ in part])
        for (q, p), prob in zip(part, probs):
            scores[q, p] = prob
    return scores


def default_rerank_k(meta: dict,
                     fallback: int,
                     given: Optional[int] = None) -> int:
    """The page's default k' for an index: ``given`` if not None, else 0
    where ITC alone measured best, the measured k' where a re-ranking did,
    ``fallback`` where nothing was measured (an index built before this
    measurement)."""
    ranking = meta.get('ranking')
    if given is not None:
        return given
    if not ranking:
        return fallback
    return 0 if ranking['default'] == 'itc' else int(ranking['rerank_k'])


def describe_ranking(meta: dict) -> str:
    """One sentence on the measured ITC / ITM / fused recall (the page shows
    it; empty when nothing was measured)."""
    ranking = meta.get('ranking')
    if not ranking:
        return ''
    figures = ', '.join(f"{name.upper()} R@1 {r['R@1']:.0f} %"
                        for name, r in ranking['recall'].items())
    return (f" Ranking measured on {ranking['queries']} held-out captions "
            f"(k' = {ranking['rerank_k']}): {figures}; default "
            f"{ranking['default'].upper()}.")
