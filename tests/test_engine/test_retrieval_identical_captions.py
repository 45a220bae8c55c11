"""Identical captions on different products (catalogue re-listings,
colourways) on a generated Fashion-Gen validation file: never drawn as
negatives of each other, and positives of each other when ranked, in both
directions and both protocols; ``identical_captions='negative'`` (the tool's
``--identical-captions negative``) reproduces the naive protocol."""
import dataclasses
import json
import os.path as osp
import runpy
import sys

import h5py
import numpy as np
import pytest
from mmengine.config import Config
from retrieval_test_utils import (run_test, save_model_checkpoint,
                                  synthetic_options)

from conftest import REPO
from mvlt.datasets.synthetic.fashiongen import (sample_products,
                                                write_fashiongen_file)
from mvlt.evaluation import positive_ranks
from mvlt.utils import register_all_modules

register_all_modules()

CONFIGS = osp.join(REPO, 'configs', 'mvlt', 'synthetic')
ZEROSHOT = osp.join(CONFIGS, 'retrieval_synthetic_zeroshot.py')
FULL_GALLERY = osp.join(CONFIGS, 'retrieval_synthetic_fullgallery.py')
TOOL = osp.join(REPO, 'tools', 'misc', 'make_retrieval_protocol.py')
NUM_PRODUCTS = 8


@pytest.fixture(scope='module')
def twins(synthetic_fashiongen, tmp_path_factory):
    """A validation file of 8 one-view products where B has exactly A's
    description and sub-category and C the same description in capitals
    (identical after the tokenizer's lower-casing), and a checkpoint of the
    demo model."""
    root = tmp_path_factory.mktemp('identical_captions')
    products = sample_products(NUM_PRODUCTS, (1, 1), np.random.default_rng(3),
                               700000)
    a = products[0]
    for i in (1, 2):
        products[i] = dataclasses.replace(
            products[i], garment=a.garment, material=a.material)
    ann_file = str(root / 'fashiongen_64_64_validation.h5')
    write_fashiongen_file(ann_file, products, img_size=64)
    with h5py.File(ann_file, 'r+') as f:
        ids = f['input_productID'][:, 0]
        rows = np.flatnonzero(ids == products[2].product_id)
        f['input_description'][rows, 0] = \
            a.description.upper().encode('latin-1')
        product_of_row = ids.tolist()
    options = synthetic_options(synthetic_fashiongen)
    options['test_dataloader.dataset.ann_file'] = ann_file
    cfg = Config.fromfile(ZEROSHOT)
    cfg.merge_from_dict(options)
    checkpoint = save_model_checkpoint(cfg.model, str(root / 'demo.pth'))
    twin_ids = {p.product_id for p in products[:3]}
    return dict(
        options=options,
        checkpoint=checkpoint,
        product=product_of_row,
        twin_ids=twin_ids,
        all_ids={p.product_id
                 for p in products},
        root=root)


def _make_protocol(twins, monkeypatch, name, *args):
    """Run tools/misc/make_retrieval_protocol.py; the file's contents."""
    out = str(twins['root'] / f'{name}.json')
    argv = [TOOL, ZEROSHOT, '--out', out, '--split', 'validation'
            ] + list(args) + ['--cfg-options'] + [
                f'{k}={v}' for k, v in twins['options'].items()
            ]
    monkeypatch.setattr(sys, 'argv', argv)
    runpy.run_path(TOOL, run_name='__main__')
    with open(out) as f:
        return out, json.load(f)


def _drawn_negatives(twins, protocol):
    """{(direction, query product): set of negative products}."""
    product = twins['product']
    drawn = {}
    for direction, record in protocol['directions'].items():
        for query, candidates in zip(record['query_rows'],
                                     record['candidate_rows']):
            assert product[candidates[0]] == product[query]
            drawn[(direction,
                   product[query])] = {product[r]
                                       for r in candidates[1:]}
    return drawn


def test_drawn_lists_never_hold_an_identical_caption(twins, monkeypatch):
    # 5 negatives: every product but the query's identical-caption twins.
    _, protocol = _make_protocol(twins, monkeypatch, 'corrected',
                                 '--num-negatives', '5')
    drawn = _drawn_negatives(twins, protocol)
    assert len(drawn) == 2 * NUM_PRODUCTS
    for (_, query), negatives in drawn.items():
        assert query not in negatives
        if query in twins['twin_ids']:
            assert negatives == twins['all_ids'] - twins['twin_ids']
    assert protocol['identical_captions'] == 'positive'
    assert protocol['shared_caption_products'] == 3


@pytest.mark.slow
def test_naive_protocol_draws_identical_captions(twins, monkeypatch):
    _, protocol = _make_protocol(twins, monkeypatch, 'naive',
                                 '--num-negatives', '7',
                                 '--identical-captions', 'negative')
    assert protocol['identical_captions'] == 'negative'
    assert protocol['shared_caption_products'] == 3
    for (_, query), negatives in _drawn_negatives(twins, protocol).items():
        assert negatives == twins['all_ids'] - {query}


def _run(twins, config, tmp_path, name, **test_cfg):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(twins['options'])
    cfg.test_cfg.update(
        show_progress=False, pair_batch_size=64, keep_topk=64, **test_cfg)
    cfg.load_from = twins['checkpoint']
    cfg.work_dir = str(tmp_path / name)
    return run_test(cfg)[1]


def _check_records(twins, records, identical_positive):
    """Every candidate is in the records (one view per product, keep_topk
    covers the lists): the positives are the query's product, plus its
    identical-caption twins unless naive; ranks follow from them; ties of
    identical captions count against the positive only when naive."""
    product, twin_ids = twins['product'], twins['twin_ids']
    assert {r['direction']
            for r in records} == {'text_to_image', 'image_to_text'}
    for record in records:
        query = product[record['query_row']]
        candidates = [product[r] for r in record['topk_rows']]
        assert sorted(candidates) == sorted(twins['all_ids'])
        if identical_positive and query in twin_ids:
            expected = [c in twin_ids for c in candidates]
        else:
            expected = [c == query for c in candidates]
        assert record['topk_positive'] == expected, record
        scores = np.asarray(record['topk_scores'])
        assert record['rank'] == positive_ranks(scores[None],
                                                np.asarray([expected]))[0]
        if query in twin_ids and record['direction'] == 'image_to_text':
            # The three captions tokenize alike: their scores tie exactly.
            twin_scores = scores[[c in twin_ids for c in candidates]]
            assert len(set(twin_scores.tolist())) == 1
            own = scores[candidates.index(query)]
            beaten = int((scores[[c not in twin_ids for c in candidates]]
                          >= own).sum())
            assert record['rank'] == 1 + beaten + 2 * (not identical_positive)


@pytest.mark.slow
def test_full_gallery_counts_identical_captions_as_positives(twins, tmp_path):
    records = _run(twins, FULL_GALLERY, tmp_path, 'full')
    _check_records(twins, records, identical_positive=True)


@pytest.mark.slow
def test_full_gallery_naive_switch_reproduces_the_old_count(twins, tmp_path):
    records = _run(
        twins, FULL_GALLERY, tmp_path, 'naive', identical_captions='negative')
    _check_records(twins, records, identical_positive=False)


@pytest.mark.slow
def test_candidate_scoring_counts_identical_captions_as_positives(
        twins, monkeypatch, tmp_path):
    """A protocol file drawn naively (identical captions among the
    negatives, as files made before the correction may be) is scored with
    them as positives; the naive switch reproduces the old ranks."""
    path, _ = _make_protocol(twins, monkeypatch, 'naive_lists',
                             '--num-negatives', '7', '--identical-captions',
                             'negative')
    records = _run(twins, ZEROSHOT, tmp_path, 'lists', protocol_file=path)
    _check_records(twins, records, identical_positive=True)
    naive = _run(
        twins,
        ZEROSHOT,
        tmp_path,
        'lists_naive',
        protocol_file=path,
        identical_captions='negative')
    _check_records(twins, naive, identical_positive=False)
