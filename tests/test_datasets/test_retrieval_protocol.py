"""Retrieval protocols: candidate lists (seeded, filled, hashed) and the
full gallery."""
import copy
import json

import numpy as np
import pytest
import torch

from mvlt.datasets.retrieval_protocol import (ProtocolRows,
                                              build_candidate_protocol,
                                              build_gallery_protocol,
                                              caption_key, caption_keys,
                                              dataset_rows,
                                              load_candidate_protocol,
                                              save_protocol)
from mvlt.registry import DATASETS
from mvlt.text import build_tokenizer
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


@pytest.fixture(scope='module')
def vocab(tmp_path_factory):
    """A BERT vocabulary of a few words."""
    from mvlt.datasets.synthetic.fashiongen import write_closed_vocab
    return write_closed_vocab(['a red dress in crepe, a blue skirt.'],
                              str(tmp_path_factory.mktemp('vocab')))


@pytest.fixture(scope='module')
def tokenizer(vocab):
    """The uncased BERT tokenizer of ``vocab``."""
    return build_tokenizer(vocab)


def test_caption_key_is_the_text_the_tokenizer_sees(vocab, tokenizer):
    key = caption_key('a red dress , in crepe .', tokenizer)
    assert key == 'a red dress , in crepe .'
    # Case, accents, spacing, control characters and glued punctuation are
    # what uncased BERT normalises away: the token ids are the same too.
    for variant in ('A Red  Dress,in Crêpe.', 'a red\tdress\x00, in CREPE.'):
        assert caption_key(variant, tokenizer) == key
        assert tokenizer(variant)['input_ids'] == \
            tokenizer(key)['input_ids']
    assert caption_key('a red dress in crepe', tokenizer) != key
    # Distinct unknown words share the [UNK] id but not the key.
    assert tokenizer('a ☃ dress')['input_ids'] == \
        tokenizer('a ☂ dress')['input_ids']
    assert caption_key('a ☃ dress', tokenizer) != \
        caption_key('a ☂ dress', tokenizer)
    # The key follows the tokenizer's settings: a cased one keeps case.
    cased = build_tokenizer(dict(vocab_file=vocab, do_lower_case=False))
    assert caption_key('A red dress', cased) != \
        caption_key('a red dress', cased)
    assert caption_keys(['A red dress', 'a red dress', 'A red dress'],
                        tokenizer) == ['a red dress'] * 3
    with pytest.raises(TypeError, match='fast tokenizer'):
        caption_key('a red dress', object())


def test_training_and_protocols_share_one_identical_caption(tokenizer):
    """ITM / ITC training groups captions by the protocols' caption_key
    (CaptionEncoder.key_ids), not by token ids, which merge unknown words."""
    from mvlt.models.utils.pairing import caption_identity
    from mvlt.text.tokenizer import CaptionEncoder
    captions = ['A Red  Dress', 'a red dress', 'a \u2603 dress',
                'a \u2602 dress', 'a blue dress']
    encoder = CaptionEncoder(tokenizer, 16)
    ids, mask = (torch.from_numpy(a) for a in encoder(captions))
    keys = torch.from_numpy(encoder.key_ids(captions))
    by_key = caption_identity(ids, mask, keys).tolist()
    groups = {}
    for index, key in enumerate(caption_keys(captions, tokenizer)):
        groups.setdefault(key, set()).add(index)
    for members in groups.values():
        assert len({by_key[i] for i in members}) == 1
    assert len(set(by_key)) == len(groups) == 4
    # Pre-tokenised captions (no text): the word pieces decide.
    by_ids = caption_identity(ids, mask).tolist()
    assert by_ids[2] == by_ids[3] and by_key[2] != by_key[3]


def _twin_rows(tokenizer=None):
    """Toy rows where product 3 (two views) has product 0's caption in
    other case and spacing, and product 5 (a COCO-like image with two
    captions) shares one caption with product 4."""
    rows = _rows(num_products=8, views=2, subcats=2, cats=1)
    rows.caption[6] = rows.caption[7] = 'Caption of  product 0'
    rows.caption[10] = rows.caption[8]  # product 5's first caption = 4's
    if tokenizer is not None:
        rows.caption_key = caption_keys(rows.caption, tokenizer)
    return rows


def test_identical_captions_are_positives_in_both_directions(tokenizer):
    rows = _twin_rows(tokenizer)
    assert rows.caption_twins() == {
        0: frozenset({3}),
        3: frozenset({0}),
        4: frozenset({5}),
        5: frozenset({4})
    }
    images = np.arange(16)
    # Text -> image: product 0's caption matches product 3's images.
    t2i = rows.matches(np.array([0, 6, 2]), images, 'text_to_image')
    assert np.flatnonzero(t2i[0]).tolist() == [0, 1, 6, 7]
    assert np.array_equal(t2i[0], t2i[1])
    assert np.flatnonzero(t2i[2]).tolist() == [2, 3]
    # Image -> text: product 3's image ranks product 0's caption as one
    # of its own; per-query candidate lists work alike.
    i2t = rows.matches(
        np.array([7]), np.array([[0, 2, 6, 7]]), 'image_to_text')
    assert i2t.tolist() == [[True, False, True, True]]
    # Product 5 carries product 4's caption (row 10) and one of its own
    # (row 11): product 4's image matches row 10 only; product 5's image
    # matches product 4's caption.
    assert rows.matches(np.array([8]), np.array([8, 10, 11]),
                        'image_to_text').tolist() == [[True, True, False]]
    assert rows.matches(np.array([11, 8]), np.array([8, 10]),
                        'text_to_image').tolist() == [[False, True],
                                                      [True, True]]
    # Shared and per-query candidate lists, both directions, agree.
    full = rows.matches(images, images, 'text_to_image')
    assert np.array_equal(
        rows.matches(images, np.tile(images, (16, 1)), 'text_to_image'), full)
    assert np.array_equal(
        rows.matches(images, images, 'image_to_text'), full.T)
    assert np.array_equal(
        rows.matches(images, np.tile(images, (16, 1)), 'image_to_text'),
        full.T)
    # The naive protocol: only the query's product.
    naive = rows.matches(np.array([0]), images, 'text_to_image', 'negative')
    assert np.flatnonzero(naive[0]).tolist() == [0, 1]
    # Without a tokenizer captions are compared verbatim.
    verbatim = _twin_rows()
    assert verbatim.caption_twins() == {4: frozenset({5}), 5: frozenset({4})}
    with pytest.raises(ValueError, match='direction'):
        rows.matches(np.array([0]), images, 'both')
    with pytest.raises(ValueError, match='identical_captions'):
        rows.matches(np.array([0]), images, 'text_to_image', 'ignore')


def test_candidate_lists_never_draw_an_identical_caption(tokenizer):
    rows = _twin_rows(tokenizer)
    product = rows.product_index
    twins = rows.caption_twins()
    for seed in range(5):
        protocol = build_candidate_protocol(
            rows, num_queries=8, num_negatives=6, seed=seed)
        assert protocol['identical_captions'] == 'positive'
        assert protocol['shared_caption_products'] == 4
        for direction in ('text_to_image', 'image_to_text'):
            record = protocol['directions'][direction]
            for query, candidates in zip(record['query_rows'],
                                         record['candidate_rows']):
                query_product = int(product[query])
                negatives = set(product[candidates[1:]].tolist())
                assert query_product not in negatives
                assert not negatives & twins.get(query_product, set())
    # The naive switch draws them (6 negatives: every other product).
    naive = build_candidate_protocol(
        rows, num_queries=8, num_negatives=7, identical_captions='negative')
    assert naive['identical_captions'] == 'negative'
    assert naive['shared_caption_products'] == 4
    record = naive['directions']['text_to_image']
    for query, candidates in zip(record['query_rows'],
                                 record['candidate_rows']):
        assert len(set(product[candidates].tolist())) == 8
    # With its twin left out, product 0 has 6 other products.
    with pytest.raises(ValueError, match='caption differs'):
        build_candidate_protocol(rows, num_queries=8, num_negatives=7)


def test_lists_without_identical_captions_are_drawn_as_before():
    rows = _rows()
    corrected = build_candidate_protocol(
        rows, num_queries=5, num_negatives=3, seed=1)
    naive = build_candidate_protocol(
        rows,
        num_queries=5,
        num_negatives=3,
        seed=1,
        identical_captions='negative')
    assert corrected['shared_caption_products'] == 0
    assert corrected['directions'] == naive['directions']
