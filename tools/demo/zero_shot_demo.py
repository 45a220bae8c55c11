"""Zero-shot garment type and colour of a product gallery by ITC similarity
to prompt captions (``MVLTInferencer.classify``), against the labels its
captions state.

    python tools/demo/zero_shot_demo.py CONFIG CHECKPOINT \
        --gallery data/synthetic_fashiongen/fashiongen_256_256_validation.h5

The labels are the synthetic garments' words
(``mvlt.datasets.synthetic``: 4 types, 12 colours); an image's true type and
colour are the ones its caption names. Prints the accuracy of each and the
most frequent confusions; ``tools/demo/run_demo.sh`` runs it on the
validation split.
"""
import re
from collections import Counter
from typing import Dict, List, Optional, Sequence

from mvlt.apis import MVLTInferencer, open_gallery
from mvlt.datasets.synthetic import COLOURS, GARMENT_TYPES
from mvlt.utils.cli import config_parser

#: Prompt templates of each attribute, in the captions' own words ("A short
#: red dotted dress in crêpe."): their embeddings are averaged.
TEMPLATES: Dict[str, List[str]] = {
    'garment type': ['{}', 'a {}.'],
    'colour': ['{}', 'a {} garment.'],
}


def caption_label(caption: str, labels: Sequence[str]) -> Optional[str]:
    """The one label word the caption names (None: none or several)."""
    words = set(re.findall(r"[\w'-]+", caption.lower()))
    found = [label for label in labels if label in words]
    return found[0] if len(found) == 1 else None


def zero_shot_accuracy(inferencer: MVLTInferencer, images: list,
                       captions: Sequence[str], labels: Sequence[str],
                       templates: Sequence[str]) -> dict:
    """Accuracy (%) of ``classify`` over the images whose caption names one
    label, and the most frequent (true, predicted) confusions."""
    truth = [caption_label(c, labels) for c in captions]
    keep = [i for i, t in enumerate(truth) if t is not None]
    predicted = [
        out['pred_class'] for out in inferencer.classify(
            [images[i] for i in keep], labels, template=list(templates))
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
    parser = config_parser(__doc__.split('\n')[0], 'model config')
    parser.add_argument('checkpoint')
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
    for attribute, labels in (('garment type', list(GARMENT_TYPES)),
                              ('colour', list(COLOURS))):
        out = zero_shot_accuracy(inferencer, images, captions, labels,
                                 TEMPLATES[attribute])
        results[attribute] = out
        confused = ', '.join(f'{t}->{p} x{n}'
                             for (t, p), n in out['confusions']) or 'none'
        print(f'Zero-shot {attribute} (ITC vs {len(labels)} prompts): '
              f"{out['accuracy']:.1f} % of {out['count']} images "
              f'(top confusions: {confused})')
    return results


if __name__ == '__main__':
    main()
