"""Draw the 101-candidate retrieval protocol of a split once, with a seed.

    python tools/misc/make_retrieval_protocol.py CONFIG [--out FILE]
        [--dataloader test_dataloader] [--num-queries 1000]
        [--num-negatives 100] [--seed 0] [--name fashiongen-101]
        [--split test] [--identical-captions positive|negative]
        [--cfg-options k=v ...]

The data set is the one of ``--dataloader`` in CONFIG; ``--out`` defaults to
the config's ``test_cfg.protocol_file``. The file holds, for each query and
direction, the rows of the positive and of the negatives (same sub-category
first; the fill from the category is recorded), and a content hash of the
data set so that the evaluator refuses it for another split.

Captions are compared as the model's tokenizer (``model.data_preprocessor.
tokenizer`` of CONFIG) normalises them. By default a product whose caption
equals the query product's is never drawn as its negative; the header
records how many products of the split share their caption with another
(``shared_caption_products``) and the switch. ``--identical-captions
negative`` draws as the naive protocol does, for comparison with published
numbers.
"""
import argparse

from mvlt.datasets.retrieval_protocol import (IDENTICAL_CAPTIONS,
                                              build_candidate_protocol,
                                              dataset_rows, save_protocol)
from mvlt.registry import DATASETS
from mvlt.text import build_tokenizer
from mvlt.utils.cli import config_parser, load_args_config


def parse_args() -> argparse.Namespace:
    parser = config_parser('Make a retrieval protocol file',
                           'config whose data set is used')
    parser.add_argument('--out', help='protocol file to write')
    parser.add_argument(
        '--dataloader',
        default='test_dataloader',
        help='config key of the dataloader whose data set is used')
    parser.add_argument('--num-queries', type=int, default=1000)
    parser.add_argument('--num-negatives', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--name',
        default='fashiongen-101',
        help='protocol label of the reported metrics')
    parser.add_argument(
        '--split', default='test', help='split label of the reported metrics')
    parser.add_argument(
        '--identical-captions',
        choices=IDENTICAL_CAPTIONS,
        default='positive',
        help='positive: never draw a product whose caption (normalised by '
        "the model's tokenizer) equals the query product's as a negative; "
        'negative: the naive protocol (for comparison with published '
        'numbers)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_args_config(args)
    out = args.out or (cfg.get('test_cfg') or {}).get('protocol_file')
    if not out:
        raise SystemExit('No output file: pass --out, or set '
                         'test_cfg.protocol_file in the config.')
    loader_cfg = cfg.get(args.dataloader)
    if not loader_cfg or 'dataset' not in loader_cfg:
        raise SystemExit(f'{args.config} has no {args.dataloader}.dataset.')
    tokenizer_cfg = ((cfg.get('model') or {}).get('data_preprocessor')
                     or {}).get('tokenizer')
    if not tokenizer_cfg:
        raise SystemExit(
            f'{args.config} has no model.data_preprocessor.tokenizer; '
            'captions are compared as the model tokenizes them.')
    dataset = DATASETS.build(loader_cfg['dataset'])
    rows = dataset_rows(dataset, build_tokenizer(tokenizer_cfg))
    protocol = build_candidate_protocol(
        rows,
        num_queries=args.num_queries,
        num_negatives=args.num_negatives,
        seed=args.seed,
        name=args.name,
        split=args.split,
        identical_captions=args.identical_captions)
    save_protocol(protocol, out)
    info = protocol['dataset']
    print(f"{out}: {protocol['num_queries']} queries x "
          f"{protocol['num_negatives'] + 1} candidates per direction on "
          f"{info['source']} ({info['num_rows']} rows, "
          f"{info['num_products']} products, hash "
          f"{info['content_hash'][:12]}).")
    shared = protocol['shared_caption_products']
    if shared:
        drawn = 'never drawn as negatives of each other' if \
            args.identical_captions == 'positive' else \
            'drawn as negatives of each other (--identical-captions negative)'
        print(f'{shared} products share their caption with another product '
              f'(after tokenizer normalisation); they are {drawn}.')
    short = protocol['short_subcategories']
    if short:
        print(f'{len(short)} sub-categories have fewer than '
              f"{protocol['num_negatives']} other products; their queries "
              f"were filled from the same category, then from any product "
              f"({protocol['filled_queries']} query lists filled; per "
              'sub-category label: other products available = '
              f'{short}).')


if __name__ == '__main__':
    main()
