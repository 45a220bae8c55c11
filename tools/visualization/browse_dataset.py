"""Show what the pipeline and the data preprocessor feed an MVLT model.

    python tools/visualization/browse_dataset.py CONFIG [--phase train]
        [--num 8] [--output-dir browse/] [--cfg-options k=v ...]

For ``--num`` samples of the phase's data set it runs the pipeline and the
model's data preprocessor (in training mode for ``train``: ITM pairs, caption
masking, image masking) and saves one PNG per image-caption pair with the
image, the image mask, the masked image the encoder sees and the caption the
encoder reads; masked caption tokens are written ``shown<original>``.
"""
import argparse
import os
import os.path as osp
import textwrap
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.dataset import pseudo_collate

from mvlt.registry import DATASETS, MODELS
from mvlt.text import build_tokenizer
from mvlt.utils.cli import config_parser, load_args_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = config_parser('Browse an MVLT data set')
    parser.add_argument(
        '--phase',
        default='train',
        choices=['train', 'val', 'test'],
        help='which dataloader to read; train also masks and pairs')
    parser.add_argument(
        '--num', type=int, default=8, help='number of samples to show')
    parser.add_argument(
        '--output-dir', default='browse_dataset', help='where PNGs go')
    return parser.parse_args(argv)


def to_uint8(images: torch.Tensor, mean: torch.Tensor,
             std: torch.Tensor) -> np.ndarray:
    """Normalised (N, 3, H, W) -> RGB uint8 (N, H, W, 3)."""
    pixels = images.float() * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)
    return pixels.clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()


def caption_text(tokenizer, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor, masked: Dict[int, int]) -> str:
    """The tokens the encoder reads; masked slots as ``shown<original>``."""
    length = int(attention_mask.sum())
    tokens = tokenizer.convert_ids_to_tokens(input_ids[:length].tolist())
    words = []
    for position, token in enumerate(tokens):
        if position in masked:
            original = tokenizer.convert_ids_to_tokens(masked[position])
            token = f'{token}<{original}>'
        words.append(token)
    return ' '.join(words)


def render_batch(inputs: dict, data_samples: list, tokenizer,
                 mean: torch.Tensor, std: torch.Tensor,
                 output_dir: str) -> List[str]:
    """Save one PNG per row of a preprocessed batch; returns the paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = inputs['images'].shape[0]
    shown = to_uint8(inputs['images'], mean, std)
    target = to_uint8(inputs.get('target_images', inputs['images']), mean, std)
    image_mask = inputs.get('image_mask')
    image_index = inputs.get('image_index', torch.arange(rows))
    itm_labels = inputs.get('itm_labels')
    paths = []
    for row in range(rows):
        masked: Dict[int, int] = {}
        if 'mlm_positions' in inputs:
            for position, label in zip(inputs['mlm_positions'][row].tolist(),
                                       inputs['mlm_labels'][row].tolist()):
                if label != -100:
                    masked[position] = label
        caption = caption_text(tokenizer, inputs['input_ids'][row],
                               inputs['attention_mask'][row], masked)
        sample = data_samples[int(image_index[row])] if data_samples else None
        product = sample.metainfo.get('product_id', '') if sample else ''
        title = f'pair {row}: image of product {product}'
        if itm_labels is not None:
            title += ', caption ' + ('matches' if int(itm_labels[row]) else
                                     'of another product')
        panels = [('image', target[row])]
        if image_mask is not None:
            mask = image_mask[row].cpu().numpy()
            panels += [(f'mask (white: {mask.mean():.0%} masked)', mask),
                       ('masked image (model input)', shown[row])]
        fig, axes = plt.subplots(
            1, len(panels), figsize=(3.2 * len(panels), 4.2), squeeze=False)
        for ax, (name, picture) in zip(axes[0], panels):
            ax.imshow(
                picture,
                cmap='gray' if picture.ndim == 2 else None,
                vmin=0,
                vmax=255 if picture.ndim == 3 else 1)
            ax.set_title(name, fontsize=9)
            ax.axis('off')
        fig.suptitle(title, fontsize=10)
        fig.text(
            0.01,
            0.02,
            '\n'.join(textwrap.wrap(caption, 110)[:6]),
            fontsize=7,
            family='monospace',
            va='bottom')
        fig.subplots_adjust(bottom=0.3, top=0.85)
        path = osp.join(output_dir, f'{row:04d}_{product}.png')
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f'{path}: {caption}')
        paths.append(path)
    return paths


def main(argv: Optional[List[str]] = None) -> List[str]:
    args = parse_args(argv)
    cfg = load_args_config(args)
    loader = cfg.get(f'{args.phase}_dataloader')
    if not loader:
        raise SystemExit(f'{args.config} has no {args.phase}_dataloader.')
    dataset = DATASETS.build(loader['dataset'])
    if len(dataset) == 0:
        raise SystemExit(f'The {args.phase} data set of {args.config} is '
                         'empty.')
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    tokenizer = build_tokenizer(cfg.model.data_preprocessor.tokenizer)
    num = min(args.num, len(dataset))
    batch = pseudo_collate([dataset[i] for i in range(num)])
    with torch.no_grad():
        out = preprocessor(batch, training=args.phase == 'train')
    os.makedirs(args.output_dir, exist_ok=True)
    return render_batch(out['inputs'], batch.get('data_samples'), tokenizer,
                        preprocessor.mean.flatten(),
                        preprocessor.std.flatten(), args.output_dir)


if __name__ == '__main__':
    main()
