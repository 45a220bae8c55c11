"""A shop's CSV (image path, caption, optional category / product id) to
image-caption tar shards with a manifest.

    python tools/dataset_converters/csv_to_shards.py products.csv OUT_DIR \
        [--image-root DIR] [--image-column image_path] \
        [--caption-column title] [--product-column sku] \
        [--category-column category] [--subcategory-column COL] \
        [--shard-size 10000] [--test-fraction 0.2]

Columns are named by the header row; defaults: ``image_path``,
``caption``, ``product_id``, ``category``, ``subcategory`` (the last three
optional: a missing product id makes each row its own product). Image paths
are local files, relative to ``--image-root`` (default: the CSV's folder);
the files are stored as they are (no re-encoding). See docs/custom_data.md.
"""
import csv
import os.path as osp

from mvlt.datasets.shard_writer import (converter_parser, image_file_sample,
                                        write_from_arguments)


def read_csv(path: str, image_root: str, columns: dict) -> list:
    """The samples of ``path``; errors name the file, line and column."""
    samples = []
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        for role in ('image', 'caption'):
            if columns[role] not in header:
                raise KeyError(
                    f'{path}: no column {columns[role]!r} (the {role}); the '
                    f'header has {header}. Name it with --{role}-column.')
        for line, row in enumerate(reader, start=2):
            where = f'{path}:{line}'
            caption = (row.get(columns['caption']) or '').strip()
            if not caption:
                raise ValueError(f'{where}: empty {columns["caption"]!r}.')
            image = (row.get(columns['image']) or '').strip()
            meta = dict(
                product_id=(row.get(columns['product']) or '').strip()
                or f'row{line}',
                source=where)
            for field in ('category', 'subcategory'):
                value = (row.get(columns[field]) or '').strip()
                if value:
                    meta[field] = value
            samples.append(
                image_file_sample(
                    osp.join(image_root, image), where, caption, meta))
    if not samples:
        raise ValueError(f'{path} has no data rows.')
    return samples


def main() -> None:
    parser = converter_parser(__doc__.split('\n')[0], 'csv',
                              'the CSV file (UTF-8, header row)')
    parser.add_argument('--image-root', help='folder of the image paths')
    for role, default in (('image', 'image_path'), ('caption', 'caption'),
                          ('product', 'product_id'), ('category', 'category'),
                          ('subcategory', 'subcategory')):
        parser.add_argument(
            f'--{role}-column', default=default, help=f'{role} column')
    args = parser.parse_args()
    columns = {
        role: getattr(args, f'{role}_column')
        for role in ('image', 'caption', 'product', 'category', 'subcategory')
    }
    image_root = args.image_root or osp.dirname(osp.abspath(args.csv))
    samples = read_csv(args.csv, image_root, columns)
    write_from_arguments(samples, args, source=osp.abspath(args.csv))


if __name__ == '__main__':
    main()
