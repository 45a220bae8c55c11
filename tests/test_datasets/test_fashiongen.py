"""FashionGenDataset on generated files in the Fashion-Gen HDF5 layout."""
import os
import os.path as osp
import shutil

import h5py
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mvlt.datasets import FashionGenDataset
from mvlt.datasets.transforms import loading
from mvlt.registry import DATASETS
from mvlt.utils import hdf5, register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC_CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets',
                            'synthetic_fashiongen.py')


def _pipeline(vocab: str, size: int = 32) -> list:
    return [
        dict(type='LoadFashionGenImage'),
        dict(type='Resize', scale=(size, size), keep_ratio=False),
        dict(type='Tokenize', tokenizer=vocab, max_length=16),
        dict(type='PackMVLTInputs'),
    ]


def _copy(src: str, tmp_path, name: str = 'copy.h5') -> str:
    dst = str(tmp_path / name)
    shutil.copyfile(src, dst)
    return dst


def _column(f: h5py.File, key: str) -> list:
    return [v.decode('latin-1') for v in f[key][:, 0]]


def test_reads_rows_captions_ids_labels_images(synthetic_fashiongen):
    register_all_modules()
    path = synthetic_fashiongen['train']
    dataset = FashionGenDataset(ann_file=path)
    with h5py.File(path, 'r') as f:
        descriptions = _column(f, 'input_description')
        product_ids = f['input_productID'][:, 0]
        categories = _column(f, 'input_category')
        subcategories = _column(f, 'input_subcategory')
        images = f['input_image'][()]
    assert len(dataset) == synthetic_fashiongen['num_images']['train']
    meta = dataset.metainfo
    assert list(meta['categories']) == sorted(set(categories))
    assert list(meta['subcategories']) == sorted(set(subcategories))
    product_index = {}
    for row in range(len(dataset)):
        info = dataset.get_data_info(row)
        assert info['h5_row'] == row
        # Accents decoded from Latin-1.
        assert info['caption'] == descriptions[row]
        assert info['product_id'] == product_ids[row]
        assert meta['categories'][info['category_label']] == categories[row]
        assert meta['subcategories'][info['subcategory_label']] == \
            subcategories[row]
        product_index.setdefault(info['product_id'], info['product_index'])
        assert product_index[info['product_id']] == info['product_index']
    assert sorted(product_index.values()) == list(range(len(product_index)))
    assert any('é' in c for c in descriptions)

    loader = loading.LoadFashionGenImage()
    for row in (0, len(dataset) - 1):
        out = loader(dict(h5_path=path, h5_row=row))
        np.testing.assert_array_equal(out['img'], images[row])
        assert out['img'].dtype == np.uint8 and out['img_shape'] == (64, 64)


def test_pipeline_packs_a_sample(synthetic_fashiongen):
    register_all_modules()
    dataset = FashionGenDataset(
        ann_file=synthetic_fashiongen['train'],
        pipeline=_pipeline(synthetic_fashiongen['vocab']))
    sample = dataset[3]
    assert sample['inputs']['images'].shape == (3, 32, 32)
    assert sample['inputs']['images'].dtype == torch.uint8
    assert sample['inputs']['input_ids'].shape == (16, )
    data_sample = sample['data_samples']
    info = dataset.get_data_info(3)
    assert data_sample.product_index == info['product_index']
    assert data_sample.category_label == info['category_label']
    assert data_sample.caption == info['caption']


def test_caption_fields_name_and_description(synthetic_fashiongen):
    dataset = FashionGenDataset(
        ann_file=synthetic_fashiongen['validation'],
        caption_fields=('input_name', 'input_description'))
    with h5py.File(synthetic_fashiongen['validation'], 'r') as f:
        name = _column(f, 'input_name')[0]
        description = _column(f, 'input_description')[0]
    assert dataset.get_data_info(0)['caption'] == f'{name}. {description}'


def test_split_sizes_and_product_table(synthetic_fashiongen):
    for split in ('train', 'validation'):
        dataset = FashionGenDataset(
            ann_file=osp.basename(synthetic_fashiongen[split]),
            data_root=synthetic_fashiongen['root'])
        table = dataset.product_table()
        assert len(dataset) == synthetic_fashiongen['num_images'][split]
        assert len(np.unique(table['product_index'])) == \
            synthetic_fashiongen['num_products'][split]
        assert set(table) == {
            'product_index', 'product_id', 'category_label',
            'subcategory_label'
        }
        for row in (0, len(dataset) - 1):
            info = dataset.get_data_info(row)
            for key, column in table.items():
                assert column[row] == info[key]
        # A product has one sub-category.
        for index in np.unique(table['product_index']):
            rows = table['product_index'] == index
            assert len(np.unique(table['subcategory_label'][rows])) == 1


def test_validation_uses_training_label_map(synthetic_fashiongen, tmp_path):
    train = FashionGenDataset(ann_file=synthetic_fashiongen['train'])
    val = FashionGenDataset(
        ann_file=synthetic_fashiongen['validation'],
        label_map_from=synthetic_fashiongen['train'])
    assert val.metainfo['subcategories'] == train.metainfo['subcategories']
    # Given names win (e.g. a checkpoint's dataset_meta): ids follow them.
    reversed_names = tuple(reversed(train.metainfo['categories']))
    val = FashionGenDataset(
        ann_file=synthetic_fashiongen['validation'],
        metainfo=dict(
            categories=reversed_names,
            subcategories=train.metainfo['subcategories']))
    with h5py.File(synthetic_fashiongen['validation'], 'r') as f:
        first = f['input_category'][0, 0].decode('latin-1')
    assert reversed_names[val.get_data_info(0)['category_label']] == first

    # A category the training split lacks: an error naming file and row, or
    # label -1 on request.
    path = _copy(synthetic_fashiongen['validation'], tmp_path)
    with h5py.File(path, 'r+') as f:
        f['input_category'][2, 0] = b'GLOVES'
    with pytest.raises(KeyError, match=r"GLOVES.*copy\.h5 row 2"):
        FashionGenDataset(
            ann_file=path, label_map_from=synthetic_fashiongen['train'])
    val = FashionGenDataset(
        ann_file=path,
        label_map_from=synthetic_fashiongen['train'],
        unknown_label='ignore')
    assert val.get_data_info(2)['category_label'] == -1
    assert val.get_data_info(0)['category_label'] >= 0


def test_missing_key_is_a_clear_error(synthetic_fashiongen, tmp_path):
    path = _copy(synthetic_fashiongen['train'], tmp_path)
    with h5py.File(path, 'r+') as f:
        del f['input_subcategory']
    with pytest.raises(KeyError, match=r'copy\.h5.*input_subcategory'):
        FashionGenDataset(ann_file=path)
    with pytest.raises(FileNotFoundError, match='nothere.h5'):
        FashionGenDataset(ann_file=str(tmp_path / 'nothere.h5'))


def test_text_field_of_wrong_shape(synthetic_fashiongen, tmp_path):
    path = _copy(synthetic_fashiongen['train'], tmp_path)
    with h5py.File(path, 'r+') as f:
        flat = f['input_description'][:, 0]
        del f['input_description']
        f['input_description'] = flat  # (N,) instead of (N, 1)
    with pytest.raises(
            ValueError, match=r'copy\.h5: input_description has shape'):
        FashionGenDataset(ann_file=path)

    path = _copy(synthetic_fashiongen['train'], tmp_path, 'short.h5')
    with h5py.File(path, 'r+') as f:
        rows = f['input_category'][:-1]
        del f['input_category']
        f['input_category'] = rows
    num = synthetic_fashiongen['num_images']['train']
    with pytest.raises(
            ValueError,
            match=rf'short\.h5.*row {num - 1} is '
            'missing in input_category'):
        FashionGenDataset(ann_file=path)


@pytest.mark.parametrize('bad', ['gray', 'float'])
def test_image_of_wrong_shape_or_dtype(synthetic_fashiongen, tmp_path, bad):
    path = _copy(synthetic_fashiongen['train'], tmp_path)
    with h5py.File(path, 'r+') as f:
        images = f['input_image'][()]
        del f['input_image']
        f['input_image'] = images[..., 0] if bad == 'gray' else \
            images.astype(np.float32)
    with pytest.raises(ValueError, match=r'copy\.h5: input_image has shape'):
        FashionGenDataset(ann_file=path)
    # The loading transform checks the row it reads as well.
    with pytest.raises(ValueError, match=r'copy\.h5 row 1: input_image'):
        loading.LoadFashionGenImage()(dict(h5_path=path, h5_row=1))
    loading.close_hdf5(path)


def test_handles_are_per_process(synthetic_fashiongen, monkeypatch):
    path = synthetic_fashiongen['validation']
    loading.close_hdf5()
    first = loading.open_hdf5(path)
    assert loading.open_hdf5(path) is first
    # In a forked worker (another pid) the inherited handle is left alone
    # and a new one is opened.
    monkeypatch.setattr(os, 'getpid', lambda: -12345)
    second = loading.open_hdf5(path)
    assert second is not first and first.id.valid
    monkeypatch.undo()
    loading.close_hdf5()


def test_construction_leaves_no_handle_and_workers_read(synthetic_fashiongen):
    loading.close_hdf5()
    dataset = FashionGenDataset(
        ann_file=synthetic_fashiongen['validation'],
        pipeline=_pipeline(synthetic_fashiongen['vocab']))
    assert synthetic_fashiongen['validation'] not in hdf5._HDF5_FILES
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=4,
        num_workers=2,
        collate_fn=pseudo_collate,
        multiprocessing_context='fork')
    seen = []
    for batch in loader:
        seen += [s.sample_idx for s in batch['data_samples']]
    assert sorted(seen) == list(range(len(dataset)))
    # The main process never opened the file to serve samples.
    assert synthetic_fashiongen['validation'] not in hdf5._HDF5_FILES


def test_synthetic_base_config_builds(synthetic_fashiongen):
    register_all_modules()
    cfg = Config.fromfile(SYNTHETIC_CONFIG)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = synthetic_fashiongen['root']
    dataset_cfg.ann_file = osp.basename(synthetic_fashiongen['train'])
    dataset = DATASETS.build(dataset_cfg)
    sample = dataset[0]
    # The loader reads and packs: the image as stored, the caption as text
    # (the model's data preprocessor crops, resizes and tokenises).
    assert sample['inputs']['images'].shape == (3, 64, 64)
    assert sample['inputs']['captions'] == sample['data_samples'].caption
    test_cfg = cfg.test_dataloader.dataset
    test_cfg.data_root = synthetic_fashiongen['root']
    test_cfg.ann_file = osp.basename(synthetic_fashiongen['validation'])
    test_cfg.label_map_from = osp.basename(synthetic_fashiongen['train'])
    test_cfg.pipeline = []
    val = DATASETS.build(test_cfg)
    assert val.metainfo['categories'] == dataset.metainfo['categories']
    assert os.path.isfile(synthetic_fashiongen['vocab'])
