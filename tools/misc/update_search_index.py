"""Add, replace and remove products of a catalogue-search index by product
id, embedding only the new photos (no rebuild).

    python tools/misc/update_search_index.py INDEX_DIR \
        [--add SPEC [--image-root DIR]] [--remove ID|@FILE ...] \
        [--checkpoint CKPT] [--batch-size 64] [--device cpu]

``--add SPEC``: a gallery as ``build_search_index.py --gallery`` takes it
(Fashion-Gen ``.h5``, ``.jsonl``, shards, folder). Its products are added; a
product id the index already holds is replaced (its old photos and caption
are removed, the new ones added). ``--remove``: product ids to remove,
separated by commas, or ``@FILE`` (one id a line). Both may be given; the
index keeps serving its old version until the update is complete
(``mvlt/apis/search_index_update.py``, docs/search_at_scale.md).

The model is the index's own (``INDEX_DIR/config.py`` and the recorded
checkpoint, or ``--checkpoint`` with the same content); run from the folder
the index was built in when its config names relative paths.
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional

from mvlt.apis import IndexMismatchError, MVLTInferencer, open_gallery
from mvlt.apis.search_index_update import (parse_product_ids,
                                           update_search_index)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('index_dir', help='the index folder')
    parser.add_argument('--add', metavar='SPEC', help='gallery of products '
                        'to add (or replace, by product id)')
    parser.add_argument('--image-root', help='folder of a JSON-lines '
                        "gallery's img_path values")
    parser.add_argument(
        '--on-bad-sample', choices=('raise', 'skip'), default='raise')
    parser.add_argument(
        '--remove',
        nargs='+',
        default=[],
        metavar='ID',
        help='product ids (comma-separated) or @FILE of one id a line')
    parser.add_argument('--checkpoint', help='instead of the recorded path')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    if not args.add and not args.remove:
        parser.error('give --add SPEC and/or --remove IDS')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Update the index; return its new meta data.

    Raises:
        SystemExit: A bad argument, gallery, index or checkpoint (the
            message says what to do); the index is then unchanged.
    """
    args = parse_args(argv)
    meta_path = osp.join(args.index_dir, 'meta.json')
    if not osp.isfile(meta_path):
        sys.exit(f'{args.index_dir} is not a complete search index (no '
                 'meta.json); build one with tools/misc/build_search_index.py')
    with open(meta_path, encoding='utf-8') as f:
        meta = json.load(f)
    gallery, inferencer = None, None
    if args.add:
        try:
            gallery = open_gallery(
                args.add, args.image_root, on_bad_sample=args.on_bad_sample)
        except (FileNotFoundError, ValueError, KeyError) as err:
            sys.exit(f'Cannot open gallery {args.add}: {err}')
        checkpoint = args.checkpoint or meta['checkpoint']['path']
        if not osp.isfile(checkpoint):
            sys.exit(f'Checkpoint {checkpoint} does not exist; pass the '
                     'one the index was built with (--checkpoint).')
        try:
            inferencer = MVLTInferencer(
                osp.join(args.index_dir, meta['config']['file']),
                checkpoint,
                device=args.device,
                batch_size=args.batch_size)
        except FileNotFoundError as err:
            sys.exit(f'{err} (the config of {args.index_dir} was written in '
                     f"{meta['config']['cwd']}: run from there)")
    try:
        meta = update_search_index(
            args.index_dir,
            inferencer,
            gallery,
            parse_product_ids(args.remove),
            chunk_size=args.batch_size)
    except (IndexMismatchError, ValueError, FileNotFoundError,
            RuntimeError) as err:
        sys.exit(f'{err}\nThe index was not changed.')
    done = meta['updates'][-1]
    print(f"Updated {args.index_dir}: {done['added_products']} product(s) "
          f"added, {done['replaced_products']} replaced, "
          f"{done['removed_products']} removed ({done['added_rows']} photos "
          f"in, {done['removed_rows']} out); embedding "
          f"{done['embed_seconds']:.1f} s, index update "
          f"{done['update_seconds']:.1f} s. Now {meta['num_items']} rows.")
    return meta


if __name__ == '__main__':
    main()
