"""FashionIQ's protocol on small constructed cases with known ranks: the tie
rule, the removal of the reference image, the joined captions, R@K per
category and their mean."""
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from mvlt.datasets import FashionIQDataset
from mvlt.evaluation import FashionIQMetric, composed_ranks


def test_reference_removed_and_ties_against_target():
    similarity = np.array([
        # reference (col 0) scores highest; col 3 ties the target (col 2)
        [0.9, 0.5, 0.7, 0.7, 0.1],
        # reference not in the gallery
        [0.1, 0.2, 0.3, 0.4, 0.5],
        # the reference is the target: it stays, as the positive
        [0.2, 0.8, 0.1, 0.9, 0.0],
    ])
    ranks = composed_ranks(similarity, [2, 4, 1], [0, -1, 1])
    assert ranks.tolist() == [2, 1, 2]
    # Had the reference stayed a candidate, query 0 would rank 3.
    assert composed_ranks(similarity, [2, 4, 1], [-1, -1, 1]).tolist() == \
        [3, 1, 2]
    # A tie with the removed reference costs nothing.
    assert composed_ranks([[0.7, 0.7, 0.1]], [1], [0]).tolist() == [1]


def test_bad_inputs():
    with pytest.raises(ValueError, match='outside the gallery'):
        composed_ranks(np.zeros((1, 3)), [3], [0])
    with pytest.raises(ValueError, match='NaN'):
        composed_ranks([[np.nan, 0.0]], [1], [-1])
    with pytest.raises(ValueError, match=r'\(Q, C\)'):
        composed_ranks(np.zeros((2, 3)), [1], [0])
    with pytest.raises(KeyError, match='TGIRTestLoop'):
        FashionIQMetric().process(None, [dict(method='composed', rank=1)])


def test_metric_per_category_and_mean():
    metric = FashionIQMetric(topk=(1, 2))
    items = []
    for category, ranks in (('dress', [1, 2, 3, 5]), ('shirt', [1, 1])):
        items += [
            dict(
                method='composed',
                category=category,
                query_id=f'{category}{i}',
                rank=r) for i, r in enumerate(ranks)
        ]
    # A repeated query (distributed padding) counts once.
    items.append(dict(items[0]))
    metric.process(None, items)
    metrics = metric.compute_metrics(metric.results)
    assert metrics == {
        'composed/dress/R@1': 25.0,
        'composed/dress/R@2': 50.0,
        'composed/shirt/R@1': 100.0,
        'composed/shirt/R@2': 100.0,
        'composed/mean/R@1': 62.5,
        'composed/mean/R@2': 75.0,
    }


WORDS = ('red', 'striped', 'short')


def _bag_of_words(text: str) -> np.ndarray:
    words = re.findall('[a-z]+', text.lower())
    counts = np.array([words.count(w) for w in WORDS], float)
    return counts / max(np.linalg.norm(counts), 1e-9)


def test_joined_captions_rank_the_target_first(tmp_path):
    """Each annotator names one change; only the two captions joined rank
    the target (red and striped) above the garments with one of them."""
    gallery = ['B0REFERENC', 'B00REDONLY', 'B0STRIPEDX', 'B000TARGET']
    for folder in ('captions', 'image_splits', 'images'):
        os.makedirs(tmp_path / folder)
    with open(tmp_path / 'image_splits' / 'split.dress.val.json', 'w') as f:
        json.dump(gallery, f)
    with open(tmp_path / 'captions' / 'cap.dress.val.json', 'w') as f:
        json.dump([
            dict(
                candidate='B0REFERENC',
                target='B000TARGET',
                captions=['is red.', 'is striped'])
        ], f)
    for asin in gallery:
        cv2.imwrite(
            osp.join(tmp_path, 'images', asin + '.png'),
            np.zeros((4, 4, 3), np.uint8))
    dataset = FashionIQDataset(
        data_root=str(tmp_path), split='val', categories=('dress', ))
    query = dataset.get_data_info(0)
    assert query['caption'] == 'is red and is striped'
    gallery_embeds = np.stack(
        [_bag_of_words(t) for t in ('short', 'red', 'striped', 'red striped')])

    def rank(text: str) -> int:
        similarity = _bag_of_words(text)[None] @ gallery_embeds.T
        return int(
            composed_ranks(similarity, [query['target_index']],
                           [query['reference_index']])[0])

    assert rank(query['caption']) == 1
    # One caption alone: the garment with that one change matches it
    # better (1.0) than the target does (0.707).
    assert rank(query['captions'][0]) == 2
    assert rank(query['captions'][1]) == 2
