"""COCORetrievalDataset on a generated Karpathy + official captions layout."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mvlt.datasets import COCORetrievalDataset, coco_retrieval
from mvlt.registry import DATASETS
from mvlt.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COCO_CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets',
                       'coco_retrieval.py')


def _dataset(root: str, **kwargs) -> COCORetrievalDataset:
    return COCORetrievalDataset(data_root=root, **kwargs)


def _copy_layout(data: dict, tmp_path) -> str:
    root = str(tmp_path / 'coco')
    shutil.copytree(data['root'], root)
    return root


def _rewrite(path: str, change) -> None:
    with open(path) as f:
        content = json.load(f)
    change(content)
    with open(path, 'w') as f:
        json.dump(content, f)


def test_train_and_test_splits(synthetic_coco):
    root = synthetic_coco['root']
    train = _dataset(root, split=('train', 'restval'))
    expected = synthetic_coco['images']['train'] + \
        synthetic_coco['images']['restval']
    assert len(train) == sum(len(i['captions']) for i in expected) == 42
    rows = [train.get_data_info(i) for i in range(len(train))]
    for image in expected:
        mine = [r for r in rows if r['product_id'] == image['cocoid']]
        # Every caption of an image is a sample with the image's id.
        assert [r['caption'] for r in mine] == image['captions']
        assert {osp.normpath(r['img_path']) for r in mine} == \
            {osp.normpath(image['img_path'])}
        assert len({r['product_index'] for r in mine}) == 1
    table = train.product_table()
    assert len(np.unique(table['product_index'])) == len(expected) == 8
    np.testing.assert_array_equal(table['category_label'], -1)

    test = _dataset(root, split='test')
    assert len(np.unique(test.product_table()['product_id'])) == 4
    assert len(test) == 21
    assert {r['product_id'] for r in map(test.get_data_info, range(21))} \
        .isdisjoint(table['product_id'].tolist())


def test_official_captions_and_pipeline(synthetic_coco):
    register_all_modules()
    root = synthetic_coco['root']
    karpathy = _dataset(root, split='val')
    official = _dataset(
        root,
        split='val',
        caption_source='official',
        max_captions_per_image=5,
        pipeline=[
            dict(type='LoadImage'),
            dict(type='Resize', scale=(32, 32), keep_ratio=False),
            dict(type='PackMVLTInputs'),
        ])
    assert len(karpathy) == 11 and len(official) == 10
    assert official.get_data_info(0)['caption'] == \
        karpathy.get_data_info(0)['caption']
    sample = official[0]
    assert sample['inputs']['images'].shape == (3, 32, 32)
    assert sample['inputs']['images'].dtype == torch.uint8
    assert sample['data_samples'].product_id == \
        synthetic_coco['images']['val'][0]['cocoid']


def test_caption_mismatch_is_reported(synthetic_coco, tmp_path, monkeypatch):
    root = _copy_layout(synthetic_coco, tmp_path)

    def change(content):
        content['annotations'][0]['caption'] = 'something else entirely'

    _rewrite(osp.join(root, 'annotations', 'captions_train2014.json'), change)
    messages = []
    monkeypatch.setattr(coco_retrieval, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    _dataset(root, split='train')
    assert len(messages) == 1 and '1 of 6 images' in messages[0]


def test_missing_split_field(synthetic_coco, tmp_path):
    root = _copy_layout(synthetic_coco, tmp_path)
    _rewrite(
        osp.join(root, 'dataset_coco.json'),
        lambda c: c['images'][3].pop('split'))
    cocoid = synthetic_coco['images']['train'][3]['cocoid']
    with pytest.raises(
            KeyError,
            match=rf"dataset_coco.json images\[3\] \(cocoid "
            rf"{cocoid}\) lacks \['split'\]"):
        _dataset(root, split='test')


def test_missing_image_file(synthetic_coco, tmp_path):
    root = _copy_layout(synthetic_coco, tmp_path)
    image = synthetic_coco['images']['test'][1]
    name = osp.basename(image['img_path'])
    os.remove(osp.join(root, 'val2014', name))
    with pytest.raises(
            FileNotFoundError,
            match=rf'images\[\d+\] \(cocoid {image["cocoid"]}\): '
            rf'image file .*{name} does not exist'):
        _dataset(root, split='test')
    # Without the up-front check the loading transform names the file.
    register_all_modules()
    dataset = _dataset(
        root,
        split='test',
        check_files=False,
        pipeline=[dict(type='LoadImage')])
    row = [
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['product_id'] == image['cocoid']
    ][0]
    with pytest.raises(FileNotFoundError, match=name):
        dataset[row]


def test_split_file_and_captions_files_must_agree(synthetic_coco, tmp_path):
    root = _copy_layout(synthetic_coco, tmp_path)
    image = synthetic_coco['images']['test'][0]

    def drop(content):
        content['images'] = [
            i for i in content['images'] if i['id'] != image['cocoid']
        ]

    _rewrite(osp.join(root, 'annotations', 'captions_val2014.json'), drop)
    with pytest.raises(KeyError, match=f'image id {image["cocoid"]} is not'):
        _dataset(root, split='test')
    # Without captions files there is no check.
    assert len(_dataset(root, split='test', caption_files=None)) == 21
    with pytest.raises(ValueError, match='split must be'):
        _dataset(root, split='minival')


def test_coco_base_config_builds(synthetic_coco):
    register_all_modules()
    cfg = Config.fromfile(COCO_CONFIG)
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = synthetic_coco['root']
    dataset_cfg.pipeline = []
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 21
