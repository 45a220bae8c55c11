"""Extend a checkpoint's word-piece vocabulary with a corpus's new pieces
(old ids kept, new embedding rows initialised), for fine-tuning on captions
the pre-training vocabulary splits badly.

    python tools/misc/extend_vocab.py CHECKPOINT OLD_VOCAB CAPTIONS OUT_DIR \
        [--max-new 2000] [--min-frequency 2]

CAPTIONS: a text file (one caption a line), a JSON-lines file (``caption``)
or a shard manifest (``manifest.json``). OUT_DIR receives ``vocab.txt`` and
``checkpoint.pth``: point ``model.data_preprocessor.tokenizer.vocab_file``
at the first and ``load_from`` at the second (docs/custom_data.md).
"""
import argparse

from mvlt.utils.vocab_extension import extend_checkpoint_vocab, iter_captions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='the checkpoint to extend')
    parser.add_argument('old_vocab', help='its vocab.txt')
    parser.add_argument('captions', help='text, JSON-lines or manifest.json')
    parser.add_argument('out_dir', help='folder for vocab.txt + checkpoint')
    parser.add_argument('--max-new', type=int, default=2000)
    parser.add_argument('--min-frequency', type=int, default=2)
    args = parser.parse_args()
    vocab, checkpoint, added = extend_checkpoint_vocab(
        args.checkpoint, args.old_vocab, iter_captions(args.captions),
        args.out_dir, args.max_new, args.min_frequency)
    print(f'Added {added} word pieces: {vocab}, {checkpoint}')


if __name__ == '__main__':
    main()
