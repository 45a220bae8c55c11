"""A Fashion-Gen HDF5 release file to image-caption tar shards.

    python tools/dataset_converters/fashiongen_to_shards.py \
        fashiongen_256_256_train.h5 OUT_DIR [--quality 95] [--shard-size 10000]

Rows are read by ``FashionGenDataset`` and ``LoadFashionGenImage`` (the
project's HDF5 reader) and JPEG-encoded (``--quality``, OpenCV); the
caption is the product description (``--caption-fields`` as the data set's
``caption_fields``), the JSON holds ``product_id``, ``category``,
``subcategory`` and the source row.
"""
import os.path as osp

import cv2

from mvlt.datasets import FashionGenDataset
from mvlt.datasets.shard_writer import (ShardSample, converter_parser,
                                        write_from_arguments)
from mvlt.datasets.transforms import LoadFashionGenImage


def read_fashiongen(path: str, caption_fields, quality: int) -> list:
    """The rows of ``path`` as JPEG samples with their labels' names."""
    dataset = FashionGenDataset(
        ann_file=osp.abspath(path), caption_fields=caption_fields)
    load = LoadFashionGenImage()
    names = dict(
        category=dataset.metainfo['categories'],
        subcategory=dataset.metainfo['subcategories'])
    samples = []
    for index in range(len(dataset)):
        info = load(dict(dataset.get_data_info(index)))
        ok, encoded = cv2.imencode('.jpg', info['img'][..., ::-1],
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError(f'{path} row {info["h5_row"]}: JPEG encoding '
                             'failed.')
        meta = dict(
            product_id=int(info['product_id']),
            source=f'{osp.basename(path)} row {info["h5_row"]}')
        for field in ('category', 'subcategory'):
            label = info.get(f'{field}_label', -1)
            if label >= 0:
                meta[field] = names[field][label]
        samples.append(
            ShardSample(
                image=encoded.tobytes(),
                image_ext='jpg',
                caption=info['caption'],
                meta=meta))
    return samples


def main() -> None:
    parser = converter_parser(__doc__.split('\n')[0], 'h5',
                              'fashiongen_256_256_{split}.h5')
    parser.add_argument('--quality', type=int, default=95, help='JPEG')
    parser.add_argument(
        '--caption-fields', nargs='+', default=['input_description'])
    args = parser.parse_args()
    samples = read_fashiongen(args.h5, args.caption_fields, args.quality)
    write_from_arguments(samples, args, source=osp.abspath(args.h5))


if __name__ == '__main__':
    main()
