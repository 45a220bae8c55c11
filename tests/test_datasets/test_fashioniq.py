"""FashionIQDataset on a hand-made fixture in the release layout, and the
synthetic FashionIQ round-tripping through it."""
import json
import os
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest

from mvlt.datasets import FashionIQDataset, join_captions
from mvlt.datasets.synthetic import write_synthetic_fashioniq
from mvlt.datasets.synthetic.fashioniq import CATEGORY_TYPES, relative_captions
from mvlt.datasets.synthetic.garments import Garment

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: category -> (image split of val, val caption entries); ASINs as released.
FIXTURE = {
    'dress': (['B000DRESS1', 'B000DRESS2', 'B000DRESS3'], [
        dict(
            target='B000DRESS2',
            candidate='B000DRESS1',
            captions=['is shorter.', 'Is red?']),
        dict(
            target='B000DRESS3',
            candidate='B000DRESS2',
            captions=['has stripes', 'is longer ']),
    ]),
    'shirt': (['B00SHIRT01', 'B00SHIRT02'], [
        dict(
            target='B00SHIRT01',
            candidate='B00SHIRT02',
            captions=['has short sleeves', 'is blue']),
    ]),
    'toptee': (['B0TOPTEE01', 'B0TOPTEE02'], [
        dict(
            target='B0TOPTEE02',
            candidate='B0TOPTEE01',
            captions=['is cropped', 'is dotted']),
    ]),
}


def _write_release(root: str, skip_image: str = None) -> None:
    for folder in ('captions', 'image_splits', 'images'):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    for k, (category, (images, pairs)) in enumerate(FIXTURE.items()):
        with open(
                osp.join(root, 'image_splits', f'split.{category}.val.json'),
                'w') as f:
            json.dump(images, f)
        with open(osp.join(root, 'captions', f'cap.{category}.val.json'),
                  'w') as f:
            json.dump(pairs, f)
        # The released test captions have no target.
        with open(
                osp.join(root, 'captions', f'cap.{category}.test.json'),
                'w') as f:
            json.dump([dict(candidate=images[0], captions=['is red', 'x'])], f)
        with open(
                osp.join(root, 'image_splits', f'split.{category}.test.json'),
                'w') as f:
            json.dump(images, f)
        for i, asin in enumerate(images):
            if asin == skip_image:
                continue
            # Mirrors differ: JPEG for dresses, PNG for the others.
            ext = '.jpg' if category == 'dress' else '.png'
            image = np.full((20 + i, 30, 3), 40 * k + 10 * i, np.uint8)
            cv2.imwrite(osp.join(root, 'images', asin + ext), image)


def test_release_layout_fixture(tmp_path):
    _write_release(str(tmp_path))
    dataset = FashionIQDataset(data_root=str(tmp_path), split='val')
    assert len(dataset) == 4
    assert [len(dataset.galleries[c]) for c in FIXTURE] == [3, 2, 2]
    first = dataset.get_data_info(0)
    assert first['category'] == 'dress' and first['category_index'] == 0
    assert first['caption'] == 'is shorter and Is red'
    assert first['img_path'].endswith(osp.join('images', 'B000DRESS1.jpg'))
    assert first['target_img_path'].endswith('B000DRESS2.jpg')
    assert (first['reference_index'], first['target_index']) == (0, 1)
    shirt = dataset.get_data_info(2)
    assert shirt['img_path'].endswith('B00SHIRT02.png')
    assert (shirt['reference_index'], shirt['target_index']) == (1, 0)
    dataset.check_queries_in_gallery()
    # Each pair once per caption order at training.
    both = FashionIQDataset(
        data_root=str(tmp_path), split='val', caption_order='both')
    assert [both.get_data_info(i)['caption'] for i in (0, 1)] == \
        ['is shorter and Is red', 'Is red and is shorter']
    assert both.get_data_info(1)['product_index'] == \
        both.get_data_info(0)['product_index']


def test_test_split_has_no_targets(tmp_path):
    _write_release(str(tmp_path))
    dataset = FashionIQDataset(
        data_root=str(tmp_path), split='test', categories=('shirt', ))
    info = dataset.get_data_info(0)
    assert info['target_id'] is None and info['target_img_path'] is None
    with pytest.raises(ValueError, match='has no targets'):
        dataset.check_queries_in_gallery()


def test_missing_image_is_named(tmp_path):
    _write_release(str(tmp_path), skip_image='B0TOPTEE02')
    with pytest.raises(FileNotFoundError) as err:
        FashionIQDataset(data_root=str(tmp_path), split='val')
    message = str(err.value)
    assert 'B0TOPTEE02' in message and 'split.toptee.val.json' in message
    assert 'B0TOPTEE02.jpg' in message and 'B0TOPTEE02.png' in message
    dropped = FashionIQDataset(
        data_root=str(tmp_path), split='val', missing_images='drop')
    assert len(dropped) == 3 and dropped.num_dropped == 2


def test_missing_files_are_named(tmp_path):
    _write_release(str(tmp_path))
    os.remove(tmp_path / 'captions' / 'cap.shirt.val.json')
    with pytest.raises(FileNotFoundError, match='cap.shirt.val.json'):
        FashionIQDataset(data_root=str(tmp_path), split='val')
    with pytest.raises(FileNotFoundError, match='image folder'):
        FashionIQDataset(data_root=str(tmp_path / 'nowhere'), split='val')
    with open(tmp_path / 'captions' / 'cap.shirt.val.json', 'w') as f:
        json.dump([dict(candidate='B00SHIRT02', captions=['x'])], f)
    with pytest.raises(KeyError, match='entry 0: no "target"'):
        FashionIQDataset(data_root=str(tmp_path), split='val')


def test_join_captions():
    assert join_captions(['is red.', ' has stripes?']) == \
        'is red and has stripes'
    assert join_captions(['is red', 'has stripes'], reverse=True) == \
        'has stripes and is red'
    assert join_captions(['is red', '...']) == 'is red'
    with pytest.raises(ValueError, match='No relative caption'):
        join_captions([' . '])


def test_relative_captions_state_the_changes():
    rng = np.random.default_rng(0)
    ref = Garment('shirt', 'long', 'blue', 'plain')
    one = relative_captions(ref, Garment('shirt', 'long', 'red', 'plain'), rng)
    assert len(one) == 2 and one[0] != one[1]
    assert all('red' in c for c in one)
    two = relative_captions(ref, Garment('shirt', 'short', 'blue', 'striped'),
                            rng)
    assert sorted('striped' in c for c in two) == [False, True]
    assert sorted('sleeve' in c for c in two) == [False, True]
    with pytest.raises(ValueError, match='1 or 2 attributes'):
        relative_captions(ref, ref, rng)


@pytest.mark.slow
def test_synthetic_round_trip(tmp_path):
    written = write_synthetic_fashioniq(
        str(tmp_path),
        copies=dict(train=1, val=1),
        pairs_per_image=dict(train=1, val=1),
        seed=3)
    names = set(os.listdir(tmp_path / 'captions'))
    assert names == {
        f'cap.{c}.{s}.json'
        for c in CATEGORY_TYPES
        for s in ('train', 'val')
    }
    for split in ('train', 'val'):
        dataset = FashionIQDataset(data_root=str(tmp_path), split=split)
        assert len(dataset) == 3 * 120
        for category in CATEGORY_TYPES:
            out = written['splits'][split][category]
            assert [g['asin'] for g in dataset.galleries[category]] == \
                list(out['images'])
        for index in (0, 200, 359):
            info = dataset.get_data_info(index)
            out = written['splits'][split][info['category']]
            pair = out['pairs'][info['pair_index']]
            assert info['caption'] == join_captions(pair['captions'])
            reference = out['garments'][info['reference_id']]
            target = out['garments'][info['target_id']]
            assert reference.garment_type == target.garment_type == \
                CATEGORY_TYPES[info['category']]
            changed = sum(
                getattr(reference, a) != getattr(target, a)
                for a in ('colour', 'pattern', 'length'))
            assert 1 <= changed <= 2
            image = cv2.imread(info['target_img_path'])
            assert image.shape == (64, 64, 3)
        dataset.check_queries_in_gallery()
    train = set(os.listdir(tmp_path / 'images'))
    train_ids = {n for n in train if n.startswith('B1')}
    val_ids = {n for n in train if n.startswith('B2')}
    assert len(train_ids) == len(val_ids) == 360 and not train_ids & val_ids
    again = tmp_path / 'again'
    write_synthetic_fashioniq(
        str(again),
        copies=dict(train=1, val=1),
        pairs_per_image=dict(train=1, val=1),
        seed=3)
    for name in ('captions/cap.dress.val.json', 'vocab.txt'):
        assert (tmp_path / name).read_bytes() == (again / name).read_bytes()


@pytest.mark.slow
def test_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', [
        'make_synthetic_fashioniq.py',
        str(tmp_path), '--train-copies', '1', '--val-copies', '1', '--ext',
        '.jpg'
    ])
    runpy.run_path(
        osp.join(REPO, 'tools', 'misc', 'make_synthetic_fashioniq.py'),
        run_name='__main__')
    assert 'val toptee: 120 images, 120 pairs' in capsys.readouterr().out
    dataset = FashionIQDataset(data_root=str(tmp_path), split='val')
    assert dataset.get_data_info(0)['img_path'].endswith('.jpg')
