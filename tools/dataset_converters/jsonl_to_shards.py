"""A JSON-lines image-caption file (``ImageTextDataset``'s format) to tar
shards with a manifest.

    python tools/dataset_converters/jsonl_to_shards.py train.jsonl OUT_DIR \
        [--image-root DIR] [--shard-size 10000] [--test-fraction 0.2]

Each line: ``img_path`` (relative to ``--image-root``, default the file's
folder), ``caption``, optional ``product_id``, ``category``,
``subcategory`` (docs/custom_data.md).
"""
import os.path as osp

from mvlt.datasets import ImageTextDataset
from mvlt.datasets.shard_writer import (converter_parser, image_file_sample,
                                        write_from_arguments)


def read_jsonl(path: str, image_root: str) -> list:
    """The samples of ``path``, parsed and checked as ``ImageTextDataset``
    does (one reader of the format; errors name the line)."""
    dataset = ImageTextDataset(
        ann_file=osp.abspath(path), lazy_init=True, unknown_label='ignore')
    samples = []
    for row in dataset._read_rows():
        where = f'{path}:{row["_line"]}'
        meta = dict(
            product_id=row.get('product_id', f'line{row["_line"]}'),
            source=where)
        for field in ('category', 'subcategory'):
            if row.get(field) is not None:
                meta[field] = row[field]
        samples.append(
            image_file_sample(
                osp.join(image_root, row['img_path']), where, row['caption'],
                meta))
    return samples


def main() -> None:
    parser = converter_parser(__doc__.split('\n')[0], 'jsonl',
                              'the JSON-lines file')
    parser.add_argument('--image-root', help='folder of img_path')
    args = parser.parse_args()
    image_root = args.image_root or osp.dirname(osp.abspath(args.jsonl))
    write_from_arguments(
        read_jsonl(args.jsonl, image_root),
        args,
        source=osp.abspath(args.jsonl))


if __name__ == '__main__':
    main()
