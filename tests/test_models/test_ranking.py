"""The one ranking function and its tie rule (ranks and displayed order)."""
import numpy as np
import pytest

from mvlt.engine.loops.retrieval_dist import DenseRanking
from mvlt.engine.loops.retrieval_records import ranked_records
from mvlt.evaluation import positive_ranks
from mvlt.models.utils import rank_candidates, rank_order

# The case: scores [0.5, 0.1, 0.5], the positive in column 0.
TIE_SCORES = np.array([[0.5, 0.1, 0.5]], np.float32)
TIE_POSITIVES = np.array([[True, False, False]])


def test_tie_counts_against_the_positive_in_rank_and_order():
    ranking = rank_candidates(
        None, TIE_SCORES, rerank_k=0, positives=TIE_POSITIVES)
    assert ranking.order.tolist() == [[2, 0, 1]]
    records = ranked_records(
        'p',
        'test',
        'text_to_image',
        np.array([7]),
        np.array([10, 11, 12]),
        ranking,
        TIE_POSITIVES,
        keep_topk=5)
    record = records[0]
    assert record['rank'] == 2
    # The top-k shows the hit where the rank counts it: second, not first.
    assert record['topk_positive'] == [False, True, False]
    assert record['topk_rows'] == [12, 10, 11]
    assert record['positive_row'] == 10


def test_tie_rule_of_the_exact_gallery_ranking():
    """The full-gallery exact path (reductions over processes) shows the
    same order for both directions."""
    ranking = DenseRanking(
        np.array([100]),
        np.array([10, 11, 12]),
        slice(0, 3),
        TIE_SCORES,
        TIE_POSITIVES,
        k=3)
    ranks, positive_rows, topk_rows, _ = ranking.text_to_image()
    assert ranks.tolist() == [2]
    assert positive_rows.tolist() == [10]
    assert topk_rows.tolist() == [[12, 10, 11]]
    # image -> text with the transposed case: captions 0..2 of one image.
    ranking = DenseRanking(
        np.array([20, 21, 22]),
        np.array([10]),
        slice(0, 1),
        TIE_SCORES.T,
        TIE_POSITIVES.T,
        k=3)
    ranks, _, topk_rows, _ = ranking.image_to_text()
    assert ranks.tolist() == [2]
    assert topk_rows.tolist() == [[22, 20, 21]]


def test_first_positive_of_the_order_is_the_metric_rank():
    rng = np.random.default_rng(0)
    # Few distinct values: many ties, within and across tiers.
    scores = rng.integers(0, 4, (200, 9)).astype(np.float32)
    tiers = rng.integers(0, 2, (200, 9))
    positives = rng.random((200, 9)) < 0.3
    positives[:, 4] = True
    for tier in (None, tiers):
        order = rank_order(scores, tier, positives=positives)
        first = np.argmax(np.take_along_axis(positives, order, 1), axis=1)
        assert (first + 1).tolist() == positive_ranks(scores, positives,
                                                      tier).tolist()


def test_rank_candidates_modes():
    similarity = np.array([[0.9, 0.2, 0.5, 0.1]], np.float32)
    seen = []

    def itm_of(columns):
        seen.append(columns.copy())
        return np.array([[0.1, 0.8]], np.float32)[:, :columns.shape[1]]

    ranking = rank_candidates(itm_of, similarity, rerank_k=2, topk=3)
    # The ITC top 2 (columns 0, 2) are re-scored by ITM and ranked first.
    assert seen[-1].tolist() == [[0, 2]]
    assert ranking.hits() == [(2, pytest.approx(0.8), 'itm'),
                              (0, pytest.approx(0.1), 'itm'),
                              (1, pytest.approx(0.2), 'itc')]
    itc = rank_candidates(None, similarity, rerank_k=5)
    assert [c for c, _, by in itc.hits()] == [0, 2, 1, 3]
    assert {by for _, _, by in itc.hits()} == {'itc'}
    exact = rank_candidates(
        lambda cols: np.array([[0.3, 0.3, 0.9, 0.0]])[:, cols[0]],
        shape=(1, 4))
    # Without positives, equal scores keep column order.
    assert [c for c, _, _ in exact.hits()] == [2, 0, 1, 3]
    with pytest.raises(ValueError, match='shape'):
        rank_candidates(itm_of)
