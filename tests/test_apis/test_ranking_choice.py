"""The index builder's choice between ITC, ITC + ITM re-ranking and the
fused score, on galleries where re-ranking is constructed to help, to hurt,
and where only the fused score is right."""
import numpy as np
import pytest

from mvlt.apis.ranking_choice import (compare_rankings, default_rerank_k,
                                      score_shortlists, shortlist_scores)


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


def test_shortlists_are_scored_together():
    """score_shortlists: the ITM probability of exactly each query's ITC
    top k' (others NaN), in blocks of pairs, each image read once per
    block, equal to scoring each query's shortlist on its own."""
    class Gallery:
        reads = []

        def read_many(self, rows):
            self.reads.append(list(rows))
            return [np.full((2, 2, 3), r, np.uint8) for r in rows]

    class Inferencer:
        calls = []

        def score(self, images, captions):
            self.calls.append(len(images))
            # a pair's probability depends on its image and caption only
            return np.array([(im[0, 0, 0] * 7 + len(c)) % 10 / 10
                             for im, c in zip(images, captions)])

    rng = np.random.default_rng(0)
    columns = np.stack([rng.permutation(12)[:6] for _ in range(5)])
    similarity = rng.random((5, 6))
    queries = ['a', 'bb', 'ccc', 'dddd', 'eeeee']
    gallery, inferencer = Gallery(), Inferencer()
    scores = score_shortlists(inferencer, gallery, queries, columns,
                              similarity, 3, block=4)
    assert inferencer.calls == [4, 4, 4, 3]  # 15 pairs in blocks of 4
    assert all(len(set(r)) == len(r) for r in gallery.reads)
    for q in range(5):
        top = np.argsort(-similarity[q], kind='stable')[:3]
        assert np.isnan(np.delete(scores[q], top)).all()
        expected = [(columns[q, p] * 7 + len(queries[q])) % 10 / 10
                    for p in top]
        np.testing.assert_allclose(scores[q, top], expected, rtol=1e-6)
