"""Convert a checkpoint of the authors' MVLT code to an MMEngine checkpoint.

    python tools/model_converters/mvlt_reference_to_mmengine.py SRC DST \
        [--config configs/mvlt/reference_mvlt_tiny.py] \
        [--cfg-options model.data_preprocessor.tokenizer.vocab_file=...] \
        [--no-verify] [--allow-unused]

SRC is a ``torch.save({'model': state_dict, ...})`` file of the reference
implementation (GewelsJI/MVLT); DST receives ``{'meta', 'state_dict'}`` for
the model of ``--config``, usable as ``load_from`` or by ``tools/test.py``.
The key mapping lives in :mod:`mvlt.models.utils.reference_mapping`. By
default the converted tensors are checked against the model the config
builds (which needs the config's vocabulary file); a checkpoint without the
category heads needs ``--cfg-options model.heads.category=None``.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

import torch

from mvlt.models.utils import (compare_with_model,
                               convert_reference_state_dict,
                               load_reference_checkpoint)
from mvlt.registry import MODELS
from mvlt.utils.cli import add_cfg_options, load_args_config

DEFAULT_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'mvlt', 'reference_mvlt_tiny.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a reference MVLT checkpoint to MMEngine.')
    parser.add_argument('src', help='reference checkpoint (.pth)')
    parser.add_argument('dst', help='output MMEngine checkpoint (.pth)')
    parser.add_argument(
        '--config',
        default=DEFAULT_CONFIG,
        help='config of the equivalent mvlt model')
    add_cfg_options(parser)
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='do not build the model to check keys and shapes')
    parser.add_argument(
        '--allow-unused',
        action='store_true',
        help='drop reference keys that no mapping rule knows')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    conversion = convert_reference_state_dict(
        load_reference_checkpoint(args.src))
    if conversion.unused and not args.allow_unused:
        sys.exit(f'{args.src}: {len(conversion.unused)} keys have no mvlt '
                 f'counterpart: {conversion.unused[:20]}; this is not the '
                 'PVLT model of the reference code, or pass --allow-unused '
                 'to drop them.')
    if not args.no_verify:
        cfg = load_args_config(args)
        model = MODELS.build(cfg.model)
        mismatch = compare_with_model(conversion.state_dict, model)
        if mismatch:
            sys.exit(f'Converted weights do not fit {args.config}:\n'
                     f'{mismatch.describe()}\nAdjust the config with '
                     '--cfg-options (for example model.heads.category=None '
                     'when the checkpoint has no category heads).')
        model.load_state_dict(conversion.state_dict, strict=True)
    meta = dict(
        converted_from=osp.abspath(args.src),
        converter='tools/model_converters/mvlt_reference_to_mmengine.py',
        config=args.config,
        dropped_keys=conversion.dropped,
        unused_keys=conversion.unused)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=conversion.state_dict), args.dst)
    print(f'Wrote {args.dst}: {len(conversion.state_dict)} tensors from '
          f'{args.src} (dropped {conversion.dropped}, unused '
          f'{conversion.unused}).')


if __name__ == '__main__':
    main()
