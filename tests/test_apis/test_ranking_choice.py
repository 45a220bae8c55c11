"""The index builder's choice between ITC, ITC + ITM re-ranking and the
fused score, on galleries where re-ranking is constructed to help, to hurt,
and where only the fused score is right."""
import numpy as np
import pytest

from mvlt.apis.ranking_choice import (compare_rankings, default_rerank_k,
                                      shortlist_scores)


def itm_table(table: np.ndarray):
    """``itm_of`` reading a (Q, C) table of ITM probabilities."""
    return lambda q, columns: table[q, columns]


def test_reranking_that_helps_is_chosen():
    # ITC puts the right item (column q) third; ITM knows it.
    similarity = np.full((4, 6), 0.1, np.float32)
    similarity[:, 4:] = 0.5
    itm = np.full((4, 6), 0.1, np.float32)
    for q in range(4):
        similarity[q, q] = 0.4
        itm[q, q] = 0.9
    out = compare_rankings(similarity, [{q} for q in range(4)],
                           itm_table(itm), 3)
    assert out['recall']['itc'] == {'R@1': 0.0, 'R@5': 100.0, 'R@10': 100.0}
    assert out['recall']['itm']['R@1'] == 100.0
    assert out['default'] == 'itm' and out['queries'] == 4
    assert default_rerank_k(dict(ranking=out), 16) == 3


def test_reranking_that_hurts_is_not_chosen():
    # ITC is right; ITM prefers the item ITC ranks second.
    similarity = np.tile(np.linspace(0.9, 0.1, 6, dtype=np.float32), (3, 1))
    itm = np.tile(np.array([0.2, 0.8, 0.1, 0.1, 0.1, 0.1], np.float32),
                  (3, 1))
    out = compare_rankings(similarity, [{0}] * 3, itm_table(itm), 4)
    assert out['recall']['itc']['R@1'] == 100.0
    assert out['recall']['itm']['R@1'] == 0.0
    assert out['default'] == 'itc'
    assert default_rerank_k(dict(ranking=out), 16) == 0
    assert default_rerank_k({}, 16) == 16


def test_fused_score_when_each_alone_errs():
    # Query 0: ITC right by far, ITM slightly wrong; query 1: ITC slightly
    # wrong, ITM right by far. Only ITM + ITC is right on both.
    similarity = np.array([[0.6, 0.3, 0.0], [0.30, 0.35, 0.0]], np.float32)
    itm = np.array([[0.50, 0.55, 0.0], [0.9, 0.1, 0.0]], np.float32)
    out = compare_rankings(similarity, [{0}, {0}], itm_table(itm), 2)
    assert [out['recall'][r]['R@1'] for r in ('itc', 'itm', 'fused')] == \
        [50.0, 50.0, 100.0]
    assert out['default'] == 'fused'
    scores = shortlist_scores(similarity[:1], np.array([[0, 1]]),
                              itm[:1, :2], 'fused')
    np.testing.assert_allclose(scores, [[1.1, 0.85]], rtol=1e-6)
    assert shortlist_scores(similarity, None, itm, 'itc') is None
    with pytest.raises(ValueError, match='Unknown ranking'):
        shortlist_scores(similarity, np.array([[0], [0]]), itm[:, :1], 'x')
