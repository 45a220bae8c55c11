"""COCO 2014 captions (Karpathy's splits) to image-caption tar shards.

    python tools/dataset_converters/coco_to_shards.py DATA_ROOT OUT_DIR \
        [--split train restval] [--shard-size 10000]

DATA_ROOT holds ``dataset_coco.json`` and the image folders, as
``COCORetrievalDataset`` reads them (the same reader is used here). One
sample per (image, caption) pair, ``product_id`` = the COCO image id, so
the captions of one image are positives of each other.
"""
from mvlt.datasets import COCORetrievalDataset
from mvlt.datasets.shard_writer import (converter_parser, image_file_sample,
                                        write_from_arguments)


def read_coco(data_root: str, splits, ann_file: str) -> list:
    """The (image, caption) samples of ``splits``."""
    dataset = COCORetrievalDataset(
        ann_file=ann_file,
        data_root=data_root,
        split=splits,
        caption_files=None,
        data_prefix=dict(img_path=data_root))
    samples = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        samples.append(
            image_file_sample(info['img_path'], f'{ann_file} #{index}',
                              info['caption'],
                              dict(product_id=info['product_id'])))
    return samples


def main() -> None:
    parser = converter_parser(__doc__.split('\n')[0], 'data_root',
                              'folder of dataset_coco.json')
    parser.add_argument('--ann-file', default='dataset_coco.json')
    parser.add_argument('--split', nargs='+', default=['train', 'restval'])
    args = parser.parse_args()
    samples = read_coco(args.data_root, args.split, args.ann_file)
    write_from_arguments(
        samples, args, source=f'{args.data_root} {" ".join(args.split)}')


if __name__ == '__main__':
    main()
