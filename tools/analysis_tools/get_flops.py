"""Count the FLOPs and parameters of an MVLT model from its config.

    python tools/analysis_tools/get_flops.py CONFIG [--shape 256 256]
        [--text-len 128] [--tasks itm mlm mir category]
        [--placeholder-vocab] [--cfg-options k=v ...]

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` for one
image-caption pair (``benchmark_modes.measure.count_flops``, which also counts
the CPU flash-attention and oneDNN fused-linear kernels of the fast path):
matrix products, convolutions and attention, counting a
multiply-add as 2 FLOPs (so GMACs = GFLOPs / 2); norms, activations and
soft-max are not counted. The encoder is counted once, then each head's
``predict`` on its features (MLM: vocabulary logits at every position).
Building the model reads the config's vocabulary; ``--placeholder-vocab``
writes a temporary one of the configured ``vocab_size`` instead (only the
size matters for counting).
"""
import argparse
import os.path as osp
import sys
import tempfile
from typing import Dict, Iterable, List, Optional

import torch
import torch.nn as nn

from mvlt.registry import MODELS
from mvlt.text.tokenizer import SPECIAL_TOKENS
from mvlt.utils.cli import config_parser, load_args_config

# The benchmark's measuring tools sit beside this script (run as a path, the
# folder is not a package on sys.path otherwise).
if osp.dirname(osp.abspath(__file__)) not in sys.path:
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_modes.measure import count_flops  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = config_parser('MVLT FLOPs and parameters')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='image size (default: the backbone img_size)')
    parser.add_argument(
        '--text-len',
        type=int,
        help='caption length in tokens (default: the backbone text_len)')
    parser.add_argument(
        '--tasks',
        nargs='+',
        help='heads to count (default: every head the config builds)')
    parser.add_argument(
        '--placeholder-vocab',
        action='store_true',
        help='use a temporary vocabulary of the configured vocab_size')
    return parser.parse_args(argv)


def write_placeholder_vocab(path: str, size: int) -> str:
    """A BERT-layout vocab.txt with ``size`` entries (special tokens, then
    ``[unused{i}]``)."""
    if size < len(SPECIAL_TOKENS):
        raise ValueError(f'vocab_size {size} is smaller than the '
                         f'{len(SPECIAL_TOKENS)} special tokens.')
    with open(path, 'w', encoding='utf-8') as f:
        for token in SPECIAL_TOKENS:
            f.write(token + '\n')
        for i in range(size - len(SPECIAL_TOKENS)):
            f.write(f'[unused{i}]\n')
    return path


def count_parameters(modules: Iterable[nn.Module]) -> int:
    """Parameters of ``modules``, each tensor once (tied weights)."""
    seen = {}
    for module in modules:
        for param in module.parameters():
            seen[id(param)] = param.numel()
    return sum(seen.values())


def measure(model: nn.Module, images: torch.Tensor, input_ids: torch.Tensor,
            tasks: List[str]) -> Dict[str, Dict[str, float]]:
    """FLOPs and parameters of the encoder and of each head in ``tasks``."""
    batch = dict(
        images=images,
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids))
    results = {}
    with torch.no_grad():
        flops, feats = count_flops(
            lambda: model.backbone(images, input_ids, batch['attention_mask']))
        results['backbone'] = dict(
            flops=flops, params=count_parameters([model.backbone]))
        for name in tasks:
            flops, _ = count_flops(
                lambda: model.heads[name].predict(feats, batch))
            head_params = count_parameters([model.backbone, model.heads[name]
                                            ]) - results['backbone']['params']
            results[f'heads.{name}'] = dict(flops=flops, params=head_params)
    results['total'] = dict(
        flops=sum(r['flops'] for r in results.values()),
        params=count_parameters([model.backbone] +
                                [model.heads[n] for n in tasks]))
    return results


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = load_args_config(args)
    backbone = cfg.model.backbone
    with tempfile.TemporaryDirectory() as tmp:
        if args.placeholder_vocab:
            size = backbone.get('vocab_size')
            if not size:
                raise SystemExit(
                    'model.backbone.vocab_size is None (taken from the '
                    'tokenizer); set it with --cfg-options to use '
                    '--placeholder-vocab.')
            cfg.model.data_preprocessor.tokenizer = dict(
                vocab_file=write_placeholder_vocab(
                    osp.join(tmp, 'vocab.txt'), size))
        model = MODELS.build(cfg.model).eval()
    img_size = model.backbone.img_size
    height, width = args.shape or img_size
    text_len = args.text_len or model.backbone.text_len
    tasks = list(args.tasks or model.heads.keys())
    unknown = [t for t in tasks if t not in model.heads]
    if unknown:
        raise SystemExit(f'--tasks {unknown} are not built by the config '
                         f'(heads: {sorted(model.heads)}).')
    images = torch.randn(1, 3, height, width)
    input_ids = torch.randint(
        len(SPECIAL_TOKENS), model.backbone.vocab_size, (1, text_len))
    results = measure(model, images, input_ids, tasks)
    line = '=' * 60
    print(f'{line}\nConfig: {args.config}\nInput: image {height}x{width}, '
          f'caption {text_len} tokens, batch 1\n{line}')
    print(f'{"part":<20}{"GFLOPs":>12}{"GMACs":>12}{"Params (M)":>14}')
    for name, value in results.items():
        print(f'{name:<20}{value["flops"] / 1e9:>12.3f}'
              f'{value["flops"] / 2e9:>12.3f}{value["params"] / 1e6:>14.3f}')
    print(f'{line}\nFLOPs count matrix products, convolutions and attention '
          '(multiply-add = 2 FLOPs); MLM logits are counted at every '
          f'position.\n{line}')


if __name__ == '__main__':
    main()
