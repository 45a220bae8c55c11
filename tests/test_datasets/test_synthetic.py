"""The synthetic Fashion-Gen generator: layout, determinism, visibility of
the captioned attributes, vocabulary, command line."""
import itertools
import os.path as osp
import runpy
import sys

import h5py
import numpy as np
import pytest

from mvlt.datasets.synthetic import (COLOURS, GARMENT_TYPES, LENGTHS, PATTERNS,
                                     Garment, all_garments, draw_garment,
                                     write_synthetic_fashiongen)
from mvlt.datasets.synthetic.fashiongen import TEXT_FIELDS
from mvlt.datasets.synthetic.garments import Style, View

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _column(f: h5py.File, key: str) -> list:
    return [v.decode('latin-1') for v in f[key][:, 0]]


def test_layout_matches_fashiongen(synthetic_fashiongen):
    for split in ('train', 'validation'):
        path = synthetic_fashiongen[split]
        assert osp.basename(path) == f'fashiongen_64_64_{split}.h5'
        with h5py.File(path, 'r') as f:
            num = synthetic_fashiongen['num_images'][split]
            images = f['input_image']
            assert images.shape == (num, 64, 64, 3)
            assert images.dtype == np.uint8
            assert images.chunks == (1, 64, 64, 3)
            assert images.compression == 'gzip'
            for key in TEXT_FIELDS:
                assert f[key].shape == (num, 1), key
                assert f[key].dtype.kind == 'S', key
            assert f['input_productID'].shape == (num, 1)
            assert f['input_productID'].dtype.kind == 'i'
            assert f['input_msrpUSD'].dtype.kind == 'f'
            assert f['index'].shape == f['index_2'].shape == (num, 1)

            ids = f['input_productID'][:, 0]
            # Rows of a product are consecutive, 1-3 of them, and share
            # every text field but the pose.
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            assert len(starts) == len(set(ids.tolist())) == \
                synthetic_fashiongen['num_products'][split]
            views = np.diff(np.r_[starts, len(ids)])
            assert views.min() >= 1 and views.max() <= 3
            descriptions = _column(f, 'input_description')
            poses = _column(f, 'input_pose')
            for start, count in zip(starts, views):
                rows = range(start, start + count)
                assert len({descriptions[r] for r in rows}) == 1
                assert [poses[r] for r in rows] == \
                    [f'id_gridfs_{k + 1}' for k in range(count)]
            # Each split has distinct attribute combinations.
            names = [_column(f, 'input_name')[s] for s in starts]
            assert len(set(names)) == len(names)


def test_text_is_latin1_with_accents(synthetic_fashiongen):
    with h5py.File(synthetic_fashiongen['train'], 'r') as f:
        raw = b''.join(f['input_brand'][:, 0]) + \
            b''.join(f['input_description'][:, 0])
        brands = set(_column(f, 'input_brand'))
        descriptions = _column(f, 'input_description')
    # Latin-1 (é = one byte 0xe9), not UTF-8 (0xc3 0xa9).
    assert b'\xe9' in raw and b'\xc3\xa9' not in raw
    assert any(any(c in b for c in 'éèêëçÅ') for b in brands)
    assert any('é' in d for d in descriptions)


def test_categories_follow_attributes(synthetic_fashiongen):
    with h5py.File(synthetic_fashiongen['train'], 'r') as f:
        names = _column(f, 'input_name')
        categories = _column(f, 'input_category')
        subcategories = _column(f, 'input_subcategory')
        descriptions = _column(f, 'input_description')
    garments = {g.name: g for g in all_garments()}
    for name, cat, sub, desc in zip(names, categories, subcategories,
                                    descriptions):
        garment = garments[name]
        assert cat == garment.category and sub == garment.subcategory
        for word in (garment.colour, garment.pattern, garment.garment_type):
            assert word in desc
    # Dealt evenly: 24 products cover all 8 sub-categories.
    assert len(set(subcategories)) == 8 and len(set(categories)) == 4


@pytest.mark.slow
def test_one_attribute_change_is_visible():
    """Two garments that differ in exactly one attribute (any of them) are
    drawn differently in a sizeable part of a 64 px image, so a caption
    that names the attribute can only be matched by looking at the pixels.
    """

    def style(garment):
        return Style(
            rgb=COLOURS[garment.colour], phase=(0.3, 0.6), period_scale=1.0)

    view = View(offset=(0.0, 0.0), scale=1.0, angle=0.0)
    images = {
        g: draw_garment(g, style(g), view, 64).astype(np.int16)
        for g in all_garments()
    }
    values = dict(
        garment_type=GARMENT_TYPES,
        length=LENGTHS,
        colour=tuple(COLOURS),
        pattern=PATTERNS)
    smallest = {}
    for garment in images:
        for field, options in values.items():
            for option in options:
                if option == getattr(garment, field):
                    continue
                other = Garment(**{**garment.__dict__, field: option})
                a, b = images[garment], images[other]
                foreground = (a.min(axis=2) < 240) | (b.min(axis=2) < 240)
                changed = (np.abs(a - b).max(axis=2) > 40) & foreground
                share = float(changed.sum() / foreground.sum())
                smallest[field] = min(smallest.get(field, 1.0), share)
    # Least share of the garments' pixels that change by more than 40 grey
    # levels, over all 480 garments and all their one-attribute neighbours.
    assert smallest['garment_type'] > 0.1
    assert smallest['length'] > 0.2
    assert smallest['colour'] > 0.25
    assert smallest['pattern'] > 0.12


@pytest.mark.slow
def test_deterministic_for_a_seed(tmp_path):
    kwargs = dict(train_products=5, val_products=3, views=(1, 2), img_size=32)
    first = write_synthetic_fashiongen(str(tmp_path / 'a'), seed=7, **kwargs)
    again = write_synthetic_fashiongen(str(tmp_path / 'b'), seed=7, **kwargs)
    other = write_synthetic_fashiongen(str(tmp_path / 'c'), seed=8, **kwargs)
    with h5py.File(first['train'], 'r') as a, \
            h5py.File(again['train'], 'r') as b, \
            h5py.File(other['train'], 'r') as c:
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a.keys():
            np.testing.assert_array_equal(a[key][()], b[key][()])
        assert not (a['input_image'].shape == c['input_image'].shape and
                    np.array_equal(a['input_image'][()], c['input_image'][()]))
    with open(first['vocab']) as fa, open(again['vocab']) as fb:
        assert fa.read() == fb.read()


def test_vocabulary_covers_every_caption(synthetic_fashiongen):
    from mvlt.text import build_tokenizer
    tokenizer = build_tokenizer(synthetic_fashiongen['vocab'])
    with h5py.File(synthetic_fashiongen['validation'], 'r') as f:
        texts = _column(f, 'input_description') + _column(f, 'input_name')
    for text in texts:
        ids = tokenizer(text)['input_ids']
        assert tokenizer.unk_token_id not in ids, text
    # Accents are stripped with lower-casing (uncased BERT).
    assert tokenizer.tokenize('Café ombré')[:2] == ['cafe', 'ombre']


def test_more_products_than_combinations_repeat_balanced():
    from mvlt.datasets.synthetic import sample_products
    products = sample_products(500, (1, 1), np.random.default_rng(0))
    names = [p.garment.name for p in products]
    assert len(set(names)) == 480
    assert len({p.product_id for p in products}) == 500
    with pytest.raises(ValueError, match='views'):
        sample_products(3, (2, 1), np.random.default_rng(0))


def test_command_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / 'cli'
    monkeypatch.setattr(sys, 'argv', [
        'make_synthetic_fashiongen.py',
        str(out), '--train-products', '3', '--val-products', '2', '--views',
        '2', '2', '--img-size', '32', '--seed', '1'
    ])
    runpy.run_path(
        osp.join(REPO, 'tools', 'misc', 'make_synthetic_fashiongen.py'),
        run_name='__main__')
    printed = capsys.readouterr().out
    assert 'train: 3 products, 6 images' in printed
    assert 'validation: 2 products, 4 images' in printed
    for name in ('fashiongen_32_32_train.h5', 'fashiongen_32_32_validation.h5',
                 'vocab.txt'):
        assert (out / name).is_file()


def test_draw_garment_colours_are_nominal():
    """A plain garment's pixels are its named colour (the caption's)."""
    for colour, rgb in COLOURS.items():
        garment = Garment('skirt', 'long', colour, 'plain')
        img = draw_garment(garment, Style(rgb, (0.0, 0.0), 1.0),
                           View((0.0, 0.0), 1.0, 0.0), 64)
        centre = img[28:36, 28:36].reshape(-1, 3).astype(int)
        assert np.abs(centre - np.array(rgb)).max() <= 1, colour
    assert len(
        list(itertools.product(GARMENT_TYPES, LENGTHS, COLOURS,
                               PATTERNS))) == 480


def test_synthetic_catalogue_shards(tmp_path):
    """A shop catalogue as tar shards: the photos asked for, several per
    product, the product's description as caption, readable as a gallery,
    the same bytes for the same seed."""
    pytest.importorskip('wids')
    from mvlt.apis.gallery import open_gallery
    from mvlt.datasets.synthetic import (synthetic_catalogue_samples,
                                         write_synthetic_catalogue)
    manifest = write_synthetic_catalogue(
        str(tmp_path / 'shop'), 20, img_size=48, max_samples=8)
    assert manifest['samples'] == 20 and len(manifest['shards']) == 3
    gallery = open_gallery(str(tmp_path / 'shop' / 'manifest.json'))
    assert gallery.kind == 'shards' and len(gallery) == 20
    photos = {}
    for row in gallery.rows:
        photos.setdefault(row['product_id'], set()).add(row['caption'])
    # 3-6 photos per product, one caption per product (the last product
    # may be cut short).
    assert len(photos) <= 7 and all(len(c) == 1 for c in photos.values())
    assert gallery.read(19).shape == (48, 48, 3)
    first = list(synthetic_catalogue_samples(20, img_size=48))
    # Drawn by a spawned worker: the same photos.
    again = list(synthetic_catalogue_samples(20, img_size=48, workers=1))
    assert [s['image'] for s in again] == [s['image'] for s in first]
    assert [s['meta'] for s in again] == [s['meta'] for s in first]
    assert first[0]['caption'] == gallery.rows[0]['caption']
    with pytest.raises(ValueError, match='num_images'):
        next(synthetic_catalogue_samples(0))
