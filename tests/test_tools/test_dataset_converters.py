"""tools/dataset_converters: Fashion-Gen HDF5 and COCO to shards that
ShardDataset reads back with the source's captions, products and labels."""
import json
import subprocess
import sys

import pytest

from conftest import REPO
from mvlt.datasets import COCORetrievalDataset, FashionGenDataset, ShardDataset


def _convert(*args):
    result = subprocess.run([sys.executable, *args],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_fashiongen_to_shards(synthetic_fashiongen, tmp_path):
    h5 = synthetic_fashiongen['train']
    out = tmp_path / 'fg'
    _convert('tools/dataset_converters/fashiongen_to_shards.py', h5,
             str(out), '--shard-size', '10')
    source = FashionGenDataset(ann_file=h5)
    shards = ShardDataset(manifest=str(out / 'manifest.json'))
    manifest = json.loads((out / 'manifest.json').read_text())
    assert len(shards) == len(source) == manifest['samples']
    assert len(manifest['shards']) == -(-len(source) // 10)
    assert manifest['categories'] == list(source.metainfo['categories'])
    for index in (0, len(source) - 1):
        want, got = source.get_data_info(index), shards.get_data_info(index)
        assert got['caption'] == want['caption']
        assert got['product_id'] == want['product_id']
        assert got['category_label'] == want['category_label']


@pytest.mark.slow
def test_coco_to_shards(synthetic_coco, tmp_path):
    out = tmp_path / 'coco'
    _convert('tools/dataset_converters/coco_to_shards.py',
             synthetic_coco['root'], str(out), '--split', 'test')
    source = COCORetrievalDataset(
        data_root=synthetic_coco['root'],
        split='test',
        caption_files=None,
        data_prefix=dict(img_path=synthetic_coco['root']))
    shards = ShardDataset(manifest=str(out / 'manifest.json'))
    assert len(shards) == len(source)
    for index in range(len(source)):
        want, got = source.get_data_info(index), shards.get_data_info(index)
        assert got['caption'] == want['caption']
        assert got['product_id'] == want['product_id']
        with open(want['img_path'], 'rb') as f:  # stored, not re-encoded
            assert got['img_bytes'].tobytes() == f.read()
