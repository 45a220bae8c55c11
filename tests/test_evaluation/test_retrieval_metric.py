"""R@K / SumR against hand-computed ranks; ties count against the positive."""
import numpy as np
import pytest

from mvlt.evaluation import RetrievalMetric, positive_ranks, recall_at_k


def test_positive_ranks_toy_ranking():
    # Three queries, four candidates; the positive is candidate 0.
    scores = np.array([
        [0.9, 0.1, 0.2, 0.3],  # positive best -> rank 1
        [0.5, 0.7, 0.6, 0.1],  # two negatives above -> rank 3
        [0.1, 0.9, 0.8, 0.7],  # last -> rank 4
    ])
    positives = np.zeros_like(scores, dtype=bool)
    positives[:, 0] = True
    ranks = positive_ranks(scores, positives)
    assert ranks.tolist() == [1, 3, 4]
    recalls = recall_at_k(ranks, (1, 3, 10))
    assert recalls == pytest.approx({
        'R@1': 100 / 3,
        'R@3': 200 / 3,
        'R@10': 100.0
    })


def test_ties_are_broken_against_the_positive():
    scores = np.array([[0.5, 0.5, 0.1], [0.5, 0.5, 0.5]])
    positives = np.array([[True, False, False], [False, False, True]])
    # Query 0: one tie -> rank 2; query 1: two ties -> rank 3.
    assert positive_ranks(scores, positives).tolist() == [2, 3]
    # An unscored (-inf) positive ranks last, even against -inf negatives.
    scores = np.array([[-np.inf, -np.inf, 0.2]])
    assert positive_ranks(scores, [[True, False, False]]).tolist() == [3]


def test_several_positives_use_the_best_one():
    # Two matching captions: the better one counts; the other does not push
    # it down.
    scores = np.array([[0.9, 0.8, 0.85, 0.1]])
    positives = np.array([[False, True, True, False]])
    assert positive_ranks(scores, positives).tolist() == [2]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match='no positive'):
        positive_ranks(np.zeros((1, 3)), np.zeros((1, 3), bool))
    with pytest.raises(ValueError, match='NaN'):
        positive_ranks(np.array([[np.nan, 0.0]]), [[True, False]])


def test_metric_reports_per_direction_with_protocol_and_split():
    metric = RetrievalMetric(protocol='toy-4', split='val')
    items = []
    for query, rank in enumerate([1, 3, 12]):
        items.append(
            dict(direction='text_to_image', query_id=query, rank=rank))
    # The same query twice (distributed padding) counts once.
    items.append(dict(direction='text_to_image', query_id=2, rank=12))
    items.append(
        dict(
            direction='image_to_text',
            query_id=0,
            scores=np.array([0.2, 0.9, 0.2]),
            positives=np.array([True, False, False])))
    metric.process(None, items)
    metrics = metric.evaluate(5)
    tir = 'retrieval/toy-4/val/TIR/'
    assert metrics[tir + 'R@1'] == pytest.approx(100 / 3)
    assert metrics[tir + 'R@5'] == pytest.approx(200 / 3)
    assert metrics[tir + 'R@10'] == pytest.approx(200 / 3)
    assert metrics[tir + 'SumR'] == pytest.approx(400 / 3)
    itr = 'retrieval/toy-4/val/ITR/'
    # rank 3: one negative above, one tie.
    assert metrics[itr + 'R@1'] == 0.0
    assert metrics[itr + 'R@5'] == 100.0
    assert metrics[itr + 'SumR'] == 200.0


def test_metric_rejects_unknown_direction():
    metric = RetrievalMetric()
    with pytest.raises(KeyError, match='direction'):
        metric.process(None, [dict(direction='sideways', rank=1)])


def test_tiers_rank_re_scored_candidates_first():
    # Candidates 0-1 were re-ranked (tier 1), 2-3 kept their ITC order.
    scores = np.array([[0.2, 0.9, 0.95, 0.1], [0.2, 0.9, 0.95, 0.1]])
    tiers = np.array([[1, 1, 0, 0], [1, 1, 0, 0]])
    positives = np.array([[True, False, False, False],
                          [False, False, False, True]])
    # Query 0: tier-1 positive behind one tier-1 negative -> 2. Query 1:
    # positive in tier 0 behind both tier-1 items and candidate 2 -> 4.
    assert positive_ranks(scores, positives, tiers).tolist() == [2, 4]
    # One tier everywhere = plain ranking.
    assert positive_ranks(scores, positives, np.ones_like(tiers)).tolist() \
        == positive_ranks(scores, positives).tolist()
