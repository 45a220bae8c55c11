"""Score and rank image files against caption strings with a trained MVLT.

    # ITM probability of every image with every caption
    python tools/demo/retrieval_demo.py CONFIG CKPT --images a.png b.png \
        --captions "a red dress" "a pair of blue trousers"
    # rank the images for each caption (--mode rank-captions: the mirror)
    python tools/demo/retrieval_demo.py CONFIG CKPT --mode rank-images \
        --images data/*.png --captions "a red dress" [--topk 5] \
        [--rerank-k 32]

--rerank-k uses the ITC head (if the model has one) to pick the candidates
that ITM re-ranks.
"""
import argparse

from mvlt.apis import MVLTInferencer
from mvlt.utils.cli import load_args_config, model_parser


def parse_args() -> argparse.Namespace:
    parser = model_parser('MVLT retrieval demo', 'config file path')
    parser.add_argument('--images', nargs='+', required=True)
    parser.add_argument('--captions', nargs='+', required=True)
    parser.add_argument(
        '--mode',
        choices=['score', 'rank-images', 'rank-captions'],
        default='score')
    parser.add_argument('--topk', type=int, default=5)
    parser.add_argument('--rerank-k', type=int, default=None)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    inferencer = MVLTInferencer(
        load_args_config(args), args.checkpoint, args.device)
    if args.mode == 'score':
        pairs = [(i, c) for i in args.images for c in args.captions]
        scores = inferencer.score([i for i, _ in pairs], [c for _, c in pairs])
        width = max(len(c) for c in args.captions)
        for (image, caption), score in zip(pairs, scores):
            print(f'{score:.4f}  {caption:<{width}}  {image}')
    else:
        # Each query of one kind ranks the gallery of the other.
        if args.mode == 'rank-images':
            kind, queries, gallery = 'caption', args.captions, args.images
            rank = inferencer.rank_images
        else:
            kind, queries, gallery = 'image', args.images, args.captions
            rank = inferencer.rank_captions
        for query in queries:
            print(f'{kind}: {query}')
            hits = rank(query, gallery, args.topk, args.rerank_k)
            for place, hit in enumerate(hits, start=1):
                print(f"  #{place} {hit['score']:.4f}  "
                      f"{gallery[hit['index']]}")


if __name__ == '__main__':
    main()
