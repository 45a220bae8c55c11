"""Print (or save) the whole config after `_base_` inheritance and options.

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...]
        [--save OUT.py]
"""
import argparse
from typing import List, Optional

from mvlt.utils.cli import config_parser
from mvlt.utils.config import load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = config_parser('Print the full config')
    parser.add_argument(
        '--save', help='also write the merged config to this .py/.json/.yml')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save:
        cfg.dump(args.save)
        print(f'Saved the merged config to {args.save}')


if __name__ == '__main__':
    main()
