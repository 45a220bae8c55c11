"""Samples/s of tar-shard readers on the same shards (the measurement behind
the reader choice of mvlt/datasets/shards.py; docs/custom_data.md).

    python tools/analysis_tools/shard_reader_benchmark.py [--shards 8] \
        [--per-shard 1000] [--size 256] [--rounds 3]

Writes ``--shards`` shards of ``--per-shard`` JPEG samples (``--size`` px,
drawn noise, quality 90) to a temporary folder, then reads every sample's
members (image bytes, caption, JSON; no decoding) with: ``webdataset``'s
streaming ``WebDataset`` (shard order), ``ShardDataset`` (wids' indexed tar
behind it) in shard order and in a shuffled order, and Python's
``tarfile`` by member name in a shuffled order. Rounds alternate the
readers; medians are printed. Times are the process's CPU time
(``time.process_time``: every reader runs in this one process), which other
jobs on a shared machine do not stretch. JPEG decoding
(``mvlt.image.decode_image``, what ``LoadImage`` runs) is timed separately.
"""
import argparse
import json
import statistics
import tarfile
import tempfile
import time

import cv2
import numpy as np
import webdataset as wds

from mvlt.datasets import ShardDataset
from mvlt.datasets.shard_writer import ShardSample, write_shards
from mvlt.image import decode_image


def make_shards(root: str, shards: int, per_shard: int, size: int) -> list:
    rng = np.random.default_rng(0)
    base = cv2.resize(
        rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8),
        (size, size))
    samples = []
    for i in range(shards * per_shard):
        img = np.roll(base, i, axis=1)
        data = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        samples.append(
            ShardSample(
                image=data.tobytes(),
                image_ext='jpg',
                caption=f'product {i}',
                meta=dict(product_id=i)))
    manifest = write_shards(samples, root, max_samples=per_shard)
    return [f'{root}/{s["path"]}' for s in manifest['shards']]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shards', type=int, default=8)
    parser.add_argument('--per-shard', type=int, default=1000)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    root = tempfile.mkdtemp()
    urls = make_shards(root, args.shards, args.per_shard, args.size)
    total = args.shards * args.per_shard
    order = np.random.default_rng(1).permutation(total)
    dataset = ShardDataset(manifest=f'{root}/manifest.json')
    names = [(i // args.per_shard, f'{i:09d}') for i in range(total)]

    def webdataset_stream():
        for sample in wds.WebDataset(urls, shardshuffle=False):
            sample['jpg'], sample['txt'], json.loads(sample['json'])

    def indexed(indices):

        def run():
            for i in indices:
                dataset.get_data_info(int(i))

        return run

    def tarfile_random():
        tars = [tarfile.open(u) for u in urls]
        for i in order:
            shard, key = names[i]
            for ext in ('jpg', 'txt', 'json'):
                tars[shard].extractfile(f'{key}.{ext}').read()

    readers = {
        'webdataset (stream, shard order)': webdataset_stream,
        'ShardDataset / wids index (shard order)': indexed(range(total)),
        'ShardDataset / wids index (shuffled)': indexed(order),
        'tarfile by name (shuffled)': tarfile_random,
    }
    rates = {name: [] for name in readers}
    for _ in range(args.rounds):
        for name, run in readers.items():
            start = time.process_time()
            run()
            rates[name].append(total / (time.process_time() - start))
    for name, values in rates.items():
        print(f'{name}: {statistics.median(values):,.0f} samples/s '
              f'(rounds: {", ".join(f"{v:,.0f}" for v in values)})')
    data = dataset.get_data_info(0)['img_bytes'].tobytes()
    start = time.process_time()
    for _ in range(200):
        decode_image(data)
    print(f'JPEG decode {args.size} px (mvlt.image.decode_image): '
          f'{200 / (time.process_time() - start):,.0f} images/s')


if __name__ == '__main__':
    main()
