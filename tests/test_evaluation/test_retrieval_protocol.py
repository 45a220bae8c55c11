"""Retrieval protocols: candidate lists (seeded, filled, hashed) and the
full gallery."""
import copy
import json

import numpy as np
import pytest

from mvlt.datasets.retrieval_protocol import (ProtocolRows,
                                              build_candidate_protocol,
                                              build_gallery_protocol,
                                              dataset_rows,
                                              load_candidate_protocol,
                                              save_protocol)
from mvlt.registry import DATASETS
from mvlt.utils import register_all_modules

register_all_modules()


def _rows(num_products=12, views=2, subcats=3, cats=2):
    """Products p with ``views`` rows each; sub-category p % subcats."""
    product = np.repeat(np.arange(num_products), views)
    sub = product % subcats
    return ProtocolRows(
        product_index=product,
        product_id=[f'id{p}' for p in product],
        category_label=sub % cats,
        subcategory_label=sub,
        caption=[f'caption of product {p}' for p in product],
        image_key=[
            f'{p}_{v}.jpg' for p in range(num_products) for v in range(views)
        ],
        source='toy')


def test_candidate_lists_are_seeded_and_same_subcategory_first():
    rows = _rows()
    protocol = build_candidate_protocol(
        rows, num_queries=5, num_negatives=3, seed=1)
    assert protocol == build_candidate_protocol(
        rows, num_queries=5, num_negatives=3, seed=1)
    assert protocol != build_candidate_protocol(
        rows, num_queries=5, num_negatives=3, seed=2)
    product, sub = rows.product_index, rows.subcategory_label
    for direction in ('text_to_image', 'image_to_text'):
        record = protocol['directions'][direction]
        assert len(record['query_rows']) == 5
        for query, candidates, counts in zip(record['query_rows'],
                                             record['candidate_rows'],
                                             record['negatives_from']):
            # The positive first, then negatives of distinct other products.
            assert product[candidates[0]] == product[query]
            negatives = product[candidates[1:]]
            assert product[query] not in negatives
            assert len(set(negatives.tolist())) == 3
            # 4 products per sub-category: 3 negatives of the same one.
            assert counts == [3, 0, 0]
            assert (sub[candidates[1:]] == sub[query]).all()
    assert protocol['short_subcategories'] == {}


def test_short_subcategories_are_filled_from_the_category_and_recorded():
    rows = _rows(num_products=12, subcats=6, cats=2)  # 2 per sub-category
    protocol = build_candidate_protocol(
        rows, num_queries=12, num_negatives=7, seed=0)
    assert protocol['short_subcategories'] == {str(s): 1 for s in range(6)}
    assert protocol['filled_queries'] == 24
    cat, sub = rows.category_label, rows.subcategory_label
    record = protocol['directions']['text_to_image']
    for query, candidates, counts in zip(record['query_rows'],
                                         record['candidate_rows'],
                                         record['negatives_from']):
        # 1 of the same sub-category, 4 more of the category, 2 elsewhere.
        assert counts == [1, 4, 2]
        negatives = np.asarray(candidates[1:])
        assert (sub[negatives[:1]] == sub[query]).all()
        assert (cat[negatives[1:5]] == cat[query]).all()
        assert (cat[negatives[5:]] != cat[query]).all()


def test_too_few_products_is_an_error():
    with pytest.raises(ValueError, match='lower --num-negatives'):
        build_candidate_protocol(_rows(num_products=4), num_negatives=100)


def test_loading_checks_the_data_set(tmp_path):
    rows = _rows()
    path = str(tmp_path / 'protocol.json')
    save_protocol(
        build_candidate_protocol(rows, num_queries=4, num_negatives=3), path)
    loaded = load_candidate_protocol(path, rows)
    assert [t.direction
            for t in loaded.tasks] == ['text_to_image', 'image_to_text']
    assert loaded.tasks[0].candidate_rows.shape == (4, 4)
    pairs = loaded.tasks[1].pairs()  # image->text: (caption, image) rows
    assert (pairs[:4, 1] == loaded.tasks[1].query_rows[0]).all()

    other = copy.deepcopy(rows)
    other.caption[3] = 'changed'
    with pytest.raises(ValueError, match='made for another data set'):
        load_candidate_protocol(path, other)
    with open(path, 'w') as f:
        json.dump(dict(format='something else'), f)
    with pytest.raises(ValueError, match='not a retrieval protocol file'):
        load_candidate_protocol(path, rows)
    with open(path, 'w') as f:
        f.write('{ not json')
    with pytest.raises(ValueError, match='invalid JSON'):
        load_candidate_protocol(path, rows)


def test_content_hash_ignores_where_the_data_lies(nano_config):
    cfg = copy.deepcopy(nano_config.test_dataloader.dataset)
    rows = dataset_rows(DATASETS.build(cfg))
    cfg.data_prefix = dict(img_path='elsewhere/images/')
    moved = dataset_rows(DATASETS.build(cfg))
    assert rows.content_hash() == moved.content_hash()
    assert rows.image_key[0] == moved.image_key[0]
    assert len(rows) == 16 and rows.caption[0].startswith('a red circle')


def test_gallery_deduplicates_images_and_captions():
    rows = _rows(num_products=5, views=3)
    # Rows 0 and 1 show the same file (as COCO rows of one image do).
    rows.image_key[1] = rows.image_key[0]
    gallery = build_gallery_protocol(rows, name='toy-full', split='val')
    assert len(gallery.image_rows) == 14
    assert len(gallery.caption_rows) == 5  # one caption per product
    assert np.array_equal(gallery.text_query_rows, gallery.caption_rows)
    subset = build_gallery_protocol(rows, num_queries=3, seed=0)
    assert len(subset.text_query_rows) == 3
    assert len(subset.image_query_rows) == 3
    assert set(subset.image_query_rows) <= set(gallery.image_rows)
