"""Write a synthetic FashionIQ (the release's layout) of drawn garments.

    python tools/misc/make_synthetic_fashioniq.py OUT_DIR \
        [--train-copies 4] [--val-copies 3] [--train-pairs 2] \
        [--val-pairs 1] [--img-size 64] [--ext .png] [--seed 0]

OUT_DIR receives captions/cap.{dress,shirt,toptee}.{train,val}.json,
image_splits/split.{...}.json, images/ and vocab.txt (the demo's);
configs/mvlt/synthetic/tgir_synthetic_finetune.py reads
data/synthetic_fashioniq/. The pairs and captions are described in
mvlt/datasets/synthetic/fashioniq.py.
"""
import argparse
import time

from mvlt.datasets.synthetic import write_synthetic_fashioniq


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument(
        '--train-copies',
        type=int,
        default=4,
        help='train images per (length, colour, pattern) combination')
    parser.add_argument('--val-copies', type=int, default=3)
    parser.add_argument(
        '--train-pairs',
        type=int,
        default=2,
        help='train pairs with each image as the reference')
    parser.add_argument('--val-pairs', type=int, default=1)
    parser.add_argument('--img-size', type=int, default=64)
    parser.add_argument('--ext', choices=('.png', '.jpg'), default='.png')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for name in ('train_copies', 'val_copies', 'train_pairs', 'val_pairs',
                 'img_size'):
        if getattr(args, name) < 1:
            raise SystemExit(f'--{name.replace("_", "-")} must be >= 1.')
    start = time.perf_counter()
    result = write_synthetic_fashioniq(
        args.out_dir,
        copies=dict(train=args.train_copies, val=args.val_copies),
        pairs_per_image=dict(train=args.train_pairs, val=args.val_pairs),
        img_size=args.img_size,
        ext=args.ext,
        seed=args.seed)
    for split, categories in result['splits'].items():
        for category, written in categories.items():
            print(f'{split} {category}: {len(written["images"])} images, '
                  f'{len(written["pairs"])} pairs')
    print(f'vocabulary -> {result["vocab"]}')
    print(f'written to {args.out_dir} in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
