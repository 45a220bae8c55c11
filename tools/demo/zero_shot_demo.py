"""Zero-shot garment type and colour of a product gallery by ITC similarity
to prompt captions (``MVLTInferencer.classify``), against the labels its
captions state.

    python tools/demo/zero_shot_demo.py CONFIG CHECKPOINT \
        --gallery data/synthetic_fashiongen/fashiongen_256_256_validation.h5

The classes are the synthetic garments' words (``mvlt.datasets.synthetic``:
4 types, 12 colours), each said by captions in the generator's own words
(:func:`garment_prompts`); an image's true type and colour are the ones its
caption names. Prints the accuracy of each and the
most frequent confusions; ``tools/demo/run_demo.sh`` runs it on the
validation split.
"""
import re
from collections import Counter
from typing import Dict, List, Optional, Sequence

from mvlt.apis import MVLTInferencer, open_gallery
from mvlt.datasets.synthetic import COLOURS, GARMENT_TYPES, LENGTHS, Garment
from mvlt.utils.cli import model_parser


def garment_prompts(attribute: str) -> Dict[str, List[str]]:
    """Each class's prompts: captions in the generator's own words
    (:attr:`Garment.phrase`, "a pair of short red plain trousers.") over
    every value of the attributes other than the one asked for (pattern
    fixed to plain), averaged into the class embedding.

    Args:
        attribute: ``'garment type'`` or ``'colour'``.
    """
    labels = GARMENT_TYPES if attribute == 'garment type' else tuple(COLOURS)
    prompts: Dict[str, List[str]] = {label: [] for label in labels}
    for garment_type in GARMENT_TYPES:
        for length in LENGTHS:
            for colour in COLOURS:
                phrase = Garment(garment_type, length, colour, 'plain').phrase
                label = garment_type if attribute == 'garment type' else \
                    colour
                prompts[label].append(phrase + '.')
    return prompts


def caption_label(caption: str, labels: Sequence[str]) -> Optional[str]:
    """The one label word the caption names (None: none or several)."""
    words = set(re.findall(r"[\w'-]+", caption.lower()))
    found = [label for label in labels if label in words]
    return found[0] if len(found) == 1 else None


def zero_shot_accuracy(inferencer: MVLTInferencer, images: list,
                       captions: Sequence[str],
                       prompts: Dict[str, List[str]]) -> dict:
    """Accuracy (%) of ``classify`` over the images whose caption names one
    label, and the most frequent (true, predicted) confusions."""
    truth = [caption_label(c, list(prompts)) for c in captions]
    keep = [i for i, t in enumerate(truth) if t is not None]
    predicted = [
        out['pred_class']
        for out in inferencer.classify([images[i] for i in keep], prompts)
    ]
    right = sum(p == truth[i] for p, i in zip(predicted, keep))
    confusions = Counter(
        (truth[i], p) for p, i in zip(predicted, keep) if p != truth[i])
    return dict(
        accuracy=100.0 * right / max(len(keep), 1),
        count=len(keep),
        confusions=confusions.most_common(3))


def main(argv: Optional[List[str]] = None) -> dict:
    """Print (and return) the zero-shot accuracy of each attribute."""
    parser = model_parser(__doc__.split('\n')[0], device=False)
    parser.add_argument('--gallery', required=True, help='gallery spec')
    parser.add_argument('--batch-size', type=int, default=64)
    args = parser.parse_args(argv)
    gallery = open_gallery(args.gallery)
    inferencer = MVLTInferencer(
        args.config,
        args.checkpoint,
        cfg_options=args.cfg_options,
        batch_size=args.batch_size)
    images = gallery.read_many(range(len(gallery)))
    captions = [row['caption'] for row in gallery.rows]
    results = {}
    for attribute in ('garment type', 'colour'):
        prompts = garment_prompts(attribute)
        out = zero_shot_accuracy(inferencer, images, captions, prompts)
        results[attribute] = out
        confused = ', '.join(f'{t}->{p} x{n}'
                             for (t, p), n in out['confusions']) or 'none'
        print(f'Zero-shot {attribute} (ITC vs {len(prompts)} classes): '
              f"{out['accuracy']:.1f} % of {out['count']} images "
              f'(top confusions: {confused})')
    return results


if __name__ == '__main__':
    main()
