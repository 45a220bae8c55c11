"""Train a WordPiece vocabulary (BERT layout) from a caption corpus.

    python tools/misc/build_vocab.py CAPTIONS OUT_DIR [--vocab-size 8000]

CAPTIONS is a text file with one caption per line, a JSON-lines file with
a ``caption`` field per line, or a shard manifest (``manifest.json``).
OUT_DIR receives ``vocab.txt`` with [PAD], [UNK], [CLS], [SEP], [MASK] first.
"""
import argparse
import os.path as osp

from mvlt.text.tokenizer import build_vocab
from mvlt.utils.vocab_extension import iter_captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('captions', help='text or JSON-lines caption file')
    parser.add_argument('out_dir', help='folder for vocab.txt')
    parser.add_argument('--vocab-size', type=int, default=8000)
    parser.add_argument('--min-frequency', type=int, default=1)
    parser.add_argument('--cased', action='store_true')
    args = parser.parse_args()
    if not osp.isfile(args.captions):
        raise SystemExit(f'Caption file {args.captions} does not exist.')
    path = build_vocab(
        iter_captions(args.captions), args.out_dir, args.vocab_size,
        args.min_frequency, not args.cased)
    with open(path, encoding='utf-8') as f:
        size = sum(1 for _ in f)
    print(f'Wrote {path} with {size} entries.')


if __name__ == '__main__':
    main()
