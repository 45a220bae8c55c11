"""Masked image generation with a trained MVLT on an image file.

    python tools/demo/mig_demo.py CONFIG CKPT IMAGE [--out mig.png]
        [--seed 0] [--device cpu]

Masks the image with the config's mask generator (seeded), reconstructs it
with the MIR head and saves masked / reconstructed / original side by side.
"""
import argparse

from mvlt.apis import MVLTInferencer
from mvlt.utils.cli import load_args_config, model_parser
from mvlt.visualization import reconstruction_figure, write_rgb_image


def parse_args() -> argparse.Namespace:
    parser = model_parser('MVLT MIG demo', 'config file path')
    parser.add_argument('image')
    parser.add_argument('--out', default='mig.png')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    inferencer = MVLTInferencer(
        load_args_config(args), args.checkpoint, args.device)
    out = inferencer.reconstruct(args.image, seed=args.seed)
    figure = reconstruction_figure(
        out['masked'],
        out['reconstruction'],
        out['original'],
        title=args.image)
    write_rgb_image(args.out, figure)
    print(f'{args.out}: masked {out["mask"].mean() * 100:.0f} % of the '
          'pixels.')


if __name__ == '__main__':
    main()
