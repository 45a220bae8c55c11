"""Writing image-caption tar shards with a manifest (the converters' core).

Shards follow img2dataset's layout (``KEY.jpg``, ``KEY.txt``, ``KEY.json``
per sample) and are written with ``webdataset.TarWriter``; the manifest
(``manifest.json`` beside them, format ``mvlt-shards/1``) lists every shard
with its sample count, size in bytes and SHA-256, the totals, and the sorted
category / sub-category names (the label maps ``ShardDataset`` uses).
"""
import argparse
import datetime
import hashlib
import json
import os
import os.path as osp
import random
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .shards import MANIFEST_FORMAT, require_package

#: Image file extensions a converter stores as they are (no re-encoding).
STORED_IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png', 'webp', 'bmp')


class ShardSample(dict):
    """One sample to write: ``image`` (encoded bytes), ``image_ext``,
    ``caption`` and ``meta`` (JSON-serialisable dict)."""


def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def assign_product_indices(samples: List[ShardSample]) -> None:
    """``meta['product_index']``: a contiguous id per ``product_id``, in
    order of first appearance (as ``ImageTextDataset`` assigns it)."""
    index: Dict[str, int] = {}
    for sample in samples:
        key = str(sample['meta']['product_id'])
        sample['meta']['product_index'] = index.setdefault(key, len(index))


def split_by_product(samples: Sequence[ShardSample], test_fraction: float,
                     seed: int) -> Tuple[list, list]:
    """Hold out whole products: (train, test) with about ``test_fraction``
    of the products in test (drawn with ``seed``); photos of one product
    never straddle the split."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(
            f'test_fraction must be in [0, 1), got {test_fraction}.')
    products = sorted({str(s['meta']['product_id']) for s in samples})
    random.Random(seed).shuffle(products)
    held_out = set(products[:round(len(products) * test_fraction)])
    train = [
        s for s in samples if str(s['meta']['product_id']) not in held_out
    ]
    test = [s for s in samples if str(s['meta']['product_id']) in held_out]
    return train, test


def write_shards(samples: Iterable[ShardSample],
                 out_dir: str,
                 prefix: str = 'shard',
                 max_samples: int = 10000,
                 max_bytes: Optional[int] = None,
                 source: str = '',
                 overwrite: bool = False) -> dict:
    """Write ``samples`` to ``out_dir/PREFIX-NNNNN.tar`` and a manifest.

    A shard is closed when it holds ``max_samples`` samples or (if given)
    ``max_bytes`` bytes of members. Sample keys are running numbers
    (``000000123``); ``meta`` goes to ``KEY.json`` and ``product_index`` is
    assigned there when missing.

    Args:
        samples: The samples (a list is needed for ``product_index``).
        out_dir (str): Created if missing.
        prefix (str): Shard file name prefix.
        max_samples (int): Samples per shard (img2dataset's default 10,000).
        max_bytes (int, optional): Member bytes per shard.
        source (str): What was converted, for the manifest.
        overwrite (bool): Replace an existing manifest of ``out_dir``;
            without it an existing one is an error (nothing is touched).

    Returns:
        dict: The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        FileExistsError: ``out_dir`` has a manifest and not ``overwrite``.
        ValueError: No samples, or a sample without caption / image.
    """
    if max_samples < 1:
        raise ValueError(f'max_samples must be >= 1, got {max_samples}.')
    manifest_path = osp.join(out_dir, 'manifest.json')
    if osp.exists(manifest_path) and not overwrite:
        raise FileExistsError(
            f'{manifest_path} exists; pass --overwrite to replace those '
            'shards or choose another output folder.')
    samples = list(samples)
    if not samples:
        raise ValueError(f'No samples to write to {out_dir}.')
    if any('product_index' not in s['meta'] for s in samples):
        assign_product_indices(samples)
    os.makedirs(out_dir, exist_ok=True)
    shards: List[dict] = []
    writer, count, size = None, 0, 0

    def close() -> None:
        writer.close()
        path = osp.join(out_dir, shards[-1]['path'])
        shards[-1].update(
            samples=count, bytes=osp.getsize(path), sha256=sha256_of(path))

    categories, subcategories = set(), set()
    for number, sample in enumerate(samples):
        if not sample.get('image') or not str(sample.get('caption',
                                                         '')).strip():
            raise ValueError(f'Sample {number} ({sample["meta"]}) has no '
                             'image bytes or an empty caption.')
        record = {
            '__key__': f'{number:09d}',
            sample['image_ext']: sample['image'],
            'txt': str(sample['caption']).strip(),
            'json': json.dumps(sample['meta'], ensure_ascii=False),
        }
        member_bytes = len(sample['image']) + len(record['txt'].encode())
        full = count >= max_samples or (max_bytes is not None and count
                                        and size + member_bytes > max_bytes)
        if writer is None or full:
            if writer is not None:
                close()
            name = f'{prefix}-{len(shards):05d}.tar'
            shards.append(dict(path=name))
            tar_writer = require_package('webdataset').TarWriter
            writer = tar_writer(osp.join(out_dir, name))
            count, size = 0, 0
        writer.write(record)
        count += 1
        size += member_bytes
        for field, names in (('category', categories), ('subcategory',
                                                        subcategories)):
            if sample['meta'].get(field) is not None:
                names.add(str(sample['meta'][field]))
    close()
    manifest = dict(
        format=MANIFEST_FORMAT,
        source=source,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        samples=sum(s['samples'] for s in shards),
        products=len({str(s['meta']['product_id'])
                      for s in samples}),
        bytes=sum(s['bytes'] for s in shards),
        categories=sorted(categories),
        subcategories=sorted(subcategories),
        shards=shards)
    tmp = manifest_path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
    os.replace(tmp, manifest_path)
    return manifest


def image_ext_of(path: str) -> str:
    """The shard member extension for an image file, checked.

    Raises:
        ValueError: Not an image extension the shards store.
    """
    ext = osp.splitext(path)[1].lower().lstrip('.')
    if ext not in STORED_IMAGE_EXTENSIONS:
        raise ValueError(
            f'{path}: extension {ext!r} is not one of '
            f'{STORED_IMAGE_EXTENSIONS}; convert the image first.')
    return 'jpg' if ext == 'jpeg' else ext


def image_file_sample(path: str, where: str, caption: str,
                      meta: dict) -> ShardSample:
    """The sample of an image file, its bytes stored as they are (member
    extension from the file name); errors name ``where`` (the source row).

    Raises:
        FileNotFoundError: No such file.
        ValueError: An empty file or an extension not in
            ``STORED_IMAGE_EXTENSIONS``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{where}: image file {path} does not '
                                'exist; check --image-root.')
    with open(path, 'rb') as f:
        data = f.read()
    if not data:
        raise ValueError(f'{where}: image file {path} is empty.')
    return ShardSample(
        image=data, image_ext=image_ext_of(path), caption=caption, meta=meta)


def write_splits(samples: List[ShardSample],
                 out_dir: str,
                 test_fraction: float = 0.0,
                 seed: int = 0,
                 **kwargs) -> Dict[str, dict]:
    """:func:`write_shards` of all samples to ``out_dir``, or with
    ``test_fraction`` > 0 of a product-disjoint split to ``out_dir/train``
    and ``out_dir/test``. Returns the manifests by split name."""
    if test_fraction <= 0:
        return {'all': write_shards(samples, out_dir, **kwargs)}
    train, test = split_by_product(samples, test_fraction, seed)
    if not test or not train:
        raise ValueError(
            f'test_fraction={test_fraction} of {len(samples)} samples leaves '
            'an empty split; change it or convert more products.')
    return {
        name: write_shards(part, osp.join(out_dir, name), **kwargs)
        for name, part in (('train', train), ('test', test))
    }


def converter_parser(description: str, source: str,
                     source_help: str) -> argparse.ArgumentParser:
    """The command line every converter starts with: the positional
    ``source`` (what it reads), ``out_dir`` and the shard options; read the
    parsed options with :func:`write_from_arguments`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(source, help=source_help)
    parser.add_argument('out_dir', help='folder for the shards + manifest')
    parser.add_argument(
        '--shard-size', type=int, default=10000, help='samples per shard')
    parser.add_argument(
        '--max-bytes', type=int, help='member bytes per shard (optional)')
    parser.add_argument(
        '--test-fraction',
        type=float,
        default=0.0,
        help='hold out this fraction of the products as OUT_DIR/test '
        '(the rest in OUT_DIR/train)')
    parser.add_argument('--seed', type=int, default=0, help='split seed')
    parser.add_argument(
        '--prefix', default='shard', help='shard file name prefix')
    parser.add_argument(
        '--overwrite', action='store_true', help='replace existing shards')
    return parser


def write_from_arguments(samples: List[ShardSample], args,
                         source: str) -> Dict[str, dict]:
    """:func:`write_splits` with :func:`converter_parser`'s options;
    prints one line per split."""
    manifests = write_splits(
        samples,
        args.out_dir,
        args.test_fraction,
        args.seed,
        prefix=args.prefix,
        max_samples=args.shard_size,
        max_bytes=args.max_bytes,
        source=source,
        overwrite=args.overwrite)
    for name, manifest in manifests.items():
        where = args.out_dir if name == 'all' else osp.join(args.out_dir, name)
        print(f'{name}: {manifest["samples"]} samples of '
              f'{manifest["products"]} products in '
              f'{len(manifest["shards"])} shards ({manifest["bytes"]:,} '
              f'bytes) -> {osp.join(where, "manifest.json")}')
    return manifests
