"""JSON-lines image-caption data set, its pipeline and clear errors."""
import json

import numpy as np
import pytest
import torch

from mvlt.datasets import IGNORE_LABEL, ImageTextDataset, LabelMap
from mvlt.registry import DATASETS, MODELS
from mvlt.utils import register_all_modules

register_all_modules()


def _dataset_cfg(nano_config):
    import copy
    return copy.deepcopy(nano_config.train_dataloader.dataset)


def test_samples_are_packed_for_the_model(nano_config, nano_data):
    dataset = DATASETS.build(_dataset_cfg(nano_config))
    assert len(dataset) == len(nano_data['rows']) == 16
    sample = dataset[3]
    # The loader packs the decoded image and the caption text; the model's
    # data preprocessor resizes and tokenises them.
    assert sample['inputs']['images'].dtype == torch.uint8
    assert sample['inputs']['captions'] == nano_data['rows'][3]['caption']
    preprocessor = MODELS.build(nano_config.model.data_preprocessor)
    batch = preprocessor(
        dict(inputs=[sample['inputs']],
             data_samples=[sample['data_samples']]))['inputs']
    assert batch['images'].dtype == torch.float32
    assert batch['images'].shape == (1, 3, 64, 64)
    ids = batch['input_ids'][0]
    assert ids.shape == (32, ) and ids[0] == 2  # [CLS]
    assert batch['attention_mask'][0].sum() == (ids != 0).sum()
    data_sample = sample['data_samples']
    row = nano_data['rows'][3]
    assert data_sample.caption == row['caption']
    assert data_sample.product_index == 1  # 2 views per product
    names = dataset.metainfo['categories']
    assert names[data_sample.category_label] == row['category']
    # RGB order: the red channel dominates for a red product.
    red = nano_data['rows'].index(
        next(r for r in nano_data['rows'] if 'red' in r['caption']))
    image = dataset[red]['inputs']['images']
    centre = image[:, image.shape[1] // 2, image.shape[2] // 2].tolist()
    assert centre[0] > 150 and centre[2] < 100


def test_test_split_uses_training_label_map(nano_config, tmp_path, nano_data):
    rows = [dict(r) for r in nano_data['rows'][:2]]
    rows[1]['category'] = 'NEVER_SEEN'
    path = tmp_path / 'test.jsonl'
    path.write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
    cfg = _dataset_cfg(nano_config)
    cfg.ann_file = str(path)
    cfg.metainfo = dict(categories=['ANGULAR', 'ROUND'])
    with pytest.raises(KeyError, match=r'NEVER_SEEN.*test.jsonl:2'):
        DATASETS.build(cfg)
    cfg.unknown_label = 'ignore'
    dataset = DATASETS.build(cfg)
    assert dataset.get_data_info(1)['category_label'] == IGNORE_LABEL
    assert dataset.get_data_info(0)['category_label'] == 1


def test_label_map_is_sorted_and_stable():
    label_map = LabelMap.from_values(['b', 'a', 'b', 'c'])
    assert label_map.names == ('a', 'b', 'c')
    assert label_map.encode('c') == 2


def test_caption_line_that_is_not_json_names_file_and_line(
        nano_config, tmp_path):
    path = tmp_path / 'broken.jsonl'
    path.write_text('{"img_path": "a.png", "caption": "ok"}\n'
                    '{"img_path": "b.png", caption: oops}\n')
    cfg = _dataset_cfg(nano_config)
    cfg.ann_file = str(path)
    with pytest.raises(ValueError, match=r'broken.jsonl:2: not valid JSON'):
        DATASETS.build(cfg)
    path.write_text('{"img_path": "a.png"}\n')
    with pytest.raises(KeyError, match=r"broken.jsonl:1: missing \['caption'"):
        DATASETS.build(cfg)


def test_undecodable_image_names_its_path(nano_config, nano_data, tmp_path):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'bad.png').write_bytes(b'\x89PNG not really')
    (tmp_path / 'bad.jsonl').write_text(
        json.dumps(dict(img_path='bad.png', caption='a red circle')) + '\n')
    cfg = _dataset_cfg(nano_config)
    cfg.data_root = str(tmp_path)
    cfg.ann_file = 'bad.jsonl'
    dataset = DATASETS.build(cfg)
    with pytest.raises(ValueError, match=r'Cannot decode image .*bad.png'):
        dataset[0]
    (tmp_path / 'images' / 'bad.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'bad.png does not exist'):
        dataset[0]


def test_unknown_type_is_a_clear_error(nano_config):
    import copy
    cfg = copy.deepcopy(nano_config.model)
    cfg.backbone.type = 'PVTVl'
    with pytest.raises(KeyError, match=r'PVTVl.*not in the .*registry'):
        MODELS.build(cfg)
    cfg = _dataset_cfg(nano_config)
    cfg.type = 'ImageTextDatset'
    with pytest.raises(KeyError, match='ImageTextDatset'):
        DATASETS.build(cfg)


def test_grayscale_images_become_rgb(nano_config, tmp_path):
    import cv2
    (tmp_path / 'images').mkdir()
    cv2.imwrite(
        str(tmp_path / 'images' / 'g.png'), np.full((20, 30), 128, np.uint8))
    (tmp_path / 'g.jsonl'
     ).write_text(json.dumps(dict(img_path='g.png', caption='grey')) + '\n')
    cfg = _dataset_cfg(nano_config)
    cfg.data_root = str(tmp_path)
    cfg.ann_file = 'g.jsonl'
    sample = ImageTextDataset(**{
        k: v
        for k, v in cfg.items() if k != 'type'
    })[0]
    assert sample['inputs']['images'].shape == (3, 20, 30)
