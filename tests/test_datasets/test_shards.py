"""ShardDataset: tar shards read by index; exactly once per epoch across
ranks x workers, bad members and shards, pipe: shards, manifests."""
import hashlib
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader
from webdataset import TarWriter

from mvlt.datasets import ResumableSampler, ShardDataset, expand_shard_urls
from mvlt.datasets.shard_writer import ShardSample, write_shards
from mvlt.utils import register_all_modules

register_all_modules()

#: Seven shards of uneven sizes (60 samples).
SHARD_SIZES = (3, 11, 1, 7, 20, 5, 13)
PIPELINE = [dict(type='LoadImage'), dict(type='PackMVLTInputs')]


def _png(value: int) -> bytes:
    img = np.full((8, 8, 3), value % 256, np.uint8)
    return cv2.imencode('.png', img)[1].tobytes()


def write_uneven_shards(root, sizes=SHARD_SIZES, corrupt=()):
    """``root/part-{0..6}.tar``; sample keys ``s<shard>_<i>``; the keys in
    ``corrupt`` get image bytes that are no image."""
    number = 0
    for shard, size in enumerate(sizes):
        with TarWriter(str(root / f'part-{shard}.tar')) as sink:
            for i in range(size):
                key = f's{shard}_{i}'
                sink.write({
                    '__key__':
                    key,
                    'png':
                    b'not an image' if key in corrupt else _png(number),
                    'txt':
                    f'caption {number}',
                    'json':
                    json.dumps(
                        dict(
                            product_id=f'p{number // 2}',
                            category='A' if number % 2 else 'B')),
                })
                number += 1
    return str(root / ('part-{0..%d}.tar' % (len(sizes) - 1)))


def _keys(loader):
    return [
        sample.metainfo['img_path'].rsplit('::', 1)[1] for batch in loader
        for sample in batch['data_samples']
    ]


def _rank_loader(dataset, rank, world, monkeypatch, epoch, shuffle=True):
    monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda:
                        (rank, world))
    sampler = ResumableSampler(
        dataset, shuffle=shuffle, seed=3, round_up=False)
    sampler.set_epoch(epoch)
    return DataLoader(
        dataset,
        batch_size=4,
        sampler=sampler,
        num_workers=2,
        collate_fn=pseudo_collate,
        multiprocessing_context='fork')


@pytest.mark.slow
def test_every_sample_once_per_epoch_over_ranks_and_workers(
        tmp_path, monkeypatch):
    pattern = write_uneven_shards(tmp_path)
    dataset = ShardDataset(shards=pattern, pipeline=PIPELINE)
    assert len(dataset) == sum(SHARD_SIZES)
    everything = sorted(f's{s}_{i}.png' for s, n in enumerate(SHARD_SIZES)
                        for i in range(n))
    orders = []
    for epoch in range(2):
        keys = []
        for rank in range(3):
            keys += _keys(_rank_loader(dataset, rank, 3, monkeypatch, epoch))
        assert sorted(keys) == everything, f'epoch {epoch}'
        orders.append(keys)
    assert orders[0] != orders[1]  # each epoch its own order


def test_data_info_fields_and_label_map(tmp_path):
    dataset = ShardDataset(
        shards=write_uneven_shards(tmp_path),
        metainfo=dict(categories=('A', 'B')))
    info = dataset.get_data_info(4)
    assert info['caption'] == 'caption 4'
    assert info['img_path'].endswith('part-1.tar::s1_1.png')
    assert info['product_id'] == 'p2' and info['category_label'] == 1
    sample = ShardDataset(
        shards=write_uneven_shards(tmp_path), pipeline=PIPELINE)[4]
    assert tuple(sample['inputs']['images'].shape) == (3, 8, 8)
    assert int(sample['inputs']['images'][0, 0, 0]) == 4


def test_corrupt_member_is_skipped_and_counted_or_named(tmp_path):
    pattern = write_uneven_shards(tmp_path, corrupt={'s3_2'})
    index = sum(SHARD_SIZES[:3]) + 2
    raising = ShardDataset(shards=pattern, pipeline=PIPELINE)
    with pytest.raises((ValueError, RuntimeError),
                       match=r'part-3\.tar::s3_2\.png'):
        raising[index]
    skipping = ShardDataset(
        shards=pattern, pipeline=PIPELINE, on_bad_sample='skip')
    sample = skipping[index]
    assert sample['data_samples'].metainfo['img_path'].endswith('s3_3.png')
    assert skipping.num_bad_samples == 1


def test_unreadable_shard(tmp_path):
    pattern = write_uneven_shards(tmp_path)
    urls = expand_shard_urls(pattern)
    manifest = write_manifest_for(urls, tmp_path / 'manifest.json')
    with open(urls[1], 'r+b') as f:  # truncate: a torn download
        f.truncate(700)
    with pytest.raises(OSError, match='part-1.tar'):
        ShardDataset(shards=pattern, pipeline=PIPELINE)
    skipping = ShardDataset(
        shards=pattern,
        manifest=manifest,
        pipeline=PIPELINE,
        on_bad_sample='skip')
    # Sample 3 is the first of the torn shard: the next shard's first
    # sample replaces it, and the shard is counted once.
    sample = skipping[3]
    assert sample['data_samples'].metainfo['img_path'].endswith('s2_0.png')
    assert skipping.num_bad_samples == 1


def write_manifest_for(urls, path):
    """A manifest of existing shards (counts read with ShardDataset)."""
    shards = []
    for url in urls:
        with open(url, 'rb') as f:
            data = f.read()
        count = len(ShardDataset(shards=url))
        shards.append(
            dict(
                path=osp.basename(url),
                samples=count,
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest()))
    path.write_text(json.dumps(dict(format='mvlt-shards/1', shards=shards)))
    return str(path)


def test_pipe_shards_are_read_through_the_cache(tmp_path):
    pattern = write_uneven_shards(tmp_path)
    cache = tmp_path / 'cache'
    piped = ShardDataset(
        shards=f'pipe:cat {pattern}', cache_dir=str(cache), pipeline=PIPELINE)
    local = ShardDataset(shards=pattern, pipeline=PIPELINE)
    assert len(piped) == len(local) == sum(SHARD_SIZES)
    assert piped.get_data_info(30)['caption'] == \
        local.get_data_info(30)['caption']
    assert len(list(cache.glob('*.tar'))) == len(SHARD_SIZES)
    with pytest.raises(OSError, match='exited with'):
        ShardDataset(shards='pipe:false', cache_dir=str(cache))


def test_write_shards_manifest_counts_sizes_hashes(tmp_path):
    samples = [
        ShardSample(
            image=_png(i),
            image_ext='png',
            caption=f'c {i}',
            meta=dict(product_id=f'p{i // 3}', category='X'))
        for i in range(25)
    ]
    manifest = write_shards(samples, str(tmp_path / 'out'), max_samples=10)
    assert [s['samples'] for s in manifest['shards']] == [10, 10, 5]
    assert manifest['samples'] == 25 and manifest['products'] == 9
    assert manifest['categories'] == ['X']
    for shard in manifest['shards']:
        data = (tmp_path / 'out' / shard['path']).read_bytes()
        assert shard['bytes'] == len(data)
        assert shard['sha256'] == hashlib.sha256(data).hexdigest()
    dataset = ShardDataset(manifest=str(tmp_path / 'out' / 'manifest.json'))
    assert len(dataset) == 25
    info = dataset.get_data_info(24)
    assert info['product_index'] == 8 and info['category_label'] == 0
    with pytest.raises(FileExistsError, match='--overwrite'):
        write_shards(samples, str(tmp_path / 'out'))


def test_bad_arguments_fail_early(tmp_path):
    with pytest.raises(ValueError, match='shards='):
        ShardDataset()
    with pytest.raises(FileNotFoundError, match='does not exist'):
        ShardDataset(shards=str(tmp_path / 'missing-{0..1}.tar'))
    bad = tmp_path / 'm.json'
    bad.write_text('{"shards": []}')
    with pytest.raises(ValueError, match='not a shard manifest'):
        ShardDataset(manifest=str(bad))


def test_a_pipeline_of_another_data_set_is_refused(tmp_path):
    pipeline = [dict(type='LoadFashionGenImage'), dict(type='PackMVLTInputs')]
    with pytest.raises(ValueError, match='needs LoadImage.*LoadFashionGen'):
        ShardDataset(shards=write_uneven_shards(tmp_path), pipeline=pipeline)
