"""Write a synthetic Fashion-Gen (HDF5 release layout) and its vocabulary.

    python tools/misc/make_synthetic_fashiongen.py OUT_DIR \
        [--train-products 420] [--val-products 140] [--views 1 6] \
        [--seed 0] [--img-size 256]

OUT_DIR receives fashiongen_{S}_{S}_train.h5, fashiongen_{S}_{S}_validation.h5
and vocab.txt; configs/_base_/datasets/synthetic_fashiongen.py reads
data/synthetic_fashiongen/. The drawing is described in
mvlt/datasets/synthetic/fashiongen.py.
"""
import argparse
import time

from mvlt.datasets.synthetic import write_synthetic_fashiongen


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--train-products', type=int, default=420)
    parser.add_argument('--val-products', type=int, default=140)
    parser.add_argument(
        '--views',
        type=int,
        nargs=2,
        default=(1, 6),
        metavar=('MIN', 'MAX'),
        help='photos per product, inclusive range')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--img-size', type=int, default=256)
    parser.add_argument(
        '--compression',
        choices=('gzip', 'lzf'),
        default='gzip',
        help='filter of input_image (gzip is readable by every HDF5 tool)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for name in ('train_products', 'val_products', 'img_size'):
        if getattr(args, name) < 1:
            raise SystemExit(f'--{name.replace("_", "-")} must be >= 1.')
    if not 1 <= args.views[0] <= args.views[1]:
        raise SystemExit('--views MIN MAX needs 1 <= MIN <= MAX.')
    start = time.perf_counter()
    result = write_synthetic_fashiongen(
        args.out_dir,
        train_products=args.train_products,
        val_products=args.val_products,
        views=tuple(args.views),
        seed=args.seed,
        img_size=args.img_size,
        compression=args.compression)
    seconds = time.perf_counter() - start
    for split in ('train', 'validation'):
        print(f'{split}: {result["num_products"][split]} products, '
              f'{result["num_images"][split]} images -> {result[split]}')
    print(f'vocabulary -> {result["vocab"]}')
    print(f'done in {seconds:.1f} s')


if __name__ == '__main__':
    main()
