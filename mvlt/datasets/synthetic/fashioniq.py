"""A synthetic FashionIQ in the exact layout of the release.

FashionIQ (Wu et al., CVPR 2021) pairs a reference image with a target
image of the same category and two relative captions written by two
annotators ("is red and has short sleeves"). The release is three files per
category and split plus an image folder::

    captions/cap.{dress,shirt,toptee}.{train,val}.json
        [{"candidate": ASIN, "target": ASIN, "captions": [cap1, cap2]}, ...]
    image_splits/split.{dress,shirt,toptee}.{train,val}.json
        [ASIN, ...]
    images/{ASIN}.png (or .jpg)

Here the images are the demo's drawn garments (:mod:`.garments`): dress ->
dress, shirt -> shirt, toptee -> a sleeveless top. Every product of a split
is one image of one (length, colour, pattern) combination; each combination
appears ``copies`` times per split (different shades, pattern phases and
poses). A pair is a reference and a target of one category that differ in
one or two of colour, pattern and length; its two captions state the
changes in FashionIQ's style with words of the demo's vocabulary ("is red
not blue", "has short sleeves"). With two changes each annotator names one
of them, so only the two captions together describe the target (why
FashionIQ practice joins them). Train and validation products are drawn
separately (their ASINs never overlap).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .fashiongen import synthetic_corpus, write_closed_vocab
from .garments import (COLOURS, LENGTHS, PATTERNS, Garment, draw_garment,
                       sample_style, sample_view)

#: FashionIQ category -> drawn garment type.
CATEGORY_TYPES = {'dress': 'dress', 'shirt': 'shirt', 'toptee': 'top'}
#: The attributes a pair may change (the garment type never changes).
ATTRIBUTES = ('colour', 'pattern', 'length')
SPLIT_CODES = {'train': 1, 'val': 2, 'test': 3}

_COLOUR_PHRASES = ('is {new}', 'is {new} not {old}', '{new} instead of {old}',
                   'in {new}')
_PATTERN_PHRASES = ('is {new}', 'is {new} not {old}', '{new} instead of {old}')
_LENGTH_PHRASES = {
    ('shirt', 'short'): ('has short sleeves', 'is short sleeved'),
    ('shirt', 'long'): ('has long sleeves', 'is long sleeved'),
    'short': ('is shorter', 'is short not long'),
    'long': ('is longer', 'is long not short'),
}


def _attribute(garment: Garment, name: str) -> str:
    return dict(
        colour=garment.colour, pattern=garment.pattern,
        length=garment.length)[name]


def change_phrases(garment_type: str, attribute: str, old: str,
                   new: str) -> Tuple[str, ...]:
    """The ways an annotator may state one change, e.g. ('is red', 'is red
    not blue', ...) for colour blue -> red."""
    if attribute == 'colour':
        return tuple(p.format(old=old, new=new) for p in _COLOUR_PHRASES)
    if attribute == 'pattern':
        return tuple(p.format(old=old, new=new) for p in _PATTERN_PHRASES)
    if attribute == 'length':
        return _LENGTH_PHRASES.get((garment_type, new), _LENGTH_PHRASES[new])
    raise ValueError(f'Unknown attribute {attribute!r}; known: {ATTRIBUTES}.')


def relative_captions(reference: Garment, target: Garment,
                      rng: np.random.Generator) -> List[str]:
    """Two relative captions of a pair, as two annotators write them.

    One change: both describe it, in two different phrasings. Two changes:
    each names one of them (in random order).

    Raises:
        ValueError: The garments differ in type, or in no or all three
            attributes.
    """
    if reference.garment_type != target.garment_type:
        raise ValueError('A FashionIQ pair keeps the garment type: '
                         f'{reference} vs {target}.')
    changed = [
        a for a in ATTRIBUTES
        if _attribute(reference, a) != _attribute(target, a)
    ]
    if not 1 <= len(changed) <= 2:
        raise ValueError(f'A pair differs in 1 or 2 attributes, these in '
                         f'{changed}.')
    options = [
        change_phrases(target.garment_type, a, _attribute(reference, a),
                       _attribute(target, a)) for a in changed
    ]
    if len(options) == 1:
        first, second = rng.choice(len(options[0]), size=2, replace=False)
        return [options[0][first], options[0][second]]
    captions = [str(o[rng.integers(len(o))]) for o in options]
    return captions if rng.random() < 0.5 else captions[::-1]


def _changed_garment(reference: Garment, rng: np.random.Generator) -> Garment:
    """A garment of the same type differing in one (60 %) or two (40 %) of
    colour, pattern and length."""
    count = 1 if rng.random() < 0.6 else 2
    attrs = dict(
        colour=reference.colour,
        pattern=reference.pattern,
        length=reference.length)
    values = dict(colour=tuple(COLOURS), pattern=PATTERNS, length=LENGTHS)
    for name in rng.choice(ATTRIBUTES, size=count, replace=False):
        others = [v for v in values[name] if v != attrs[name]]
        attrs[name] = str(others[rng.integers(len(others))])
    return Garment(reference.garment_type, attrs['length'], attrs['colour'],
                   attrs['pattern'])


def _split_products(category: str, split: str, copies: int,
                    rng: np.random.Generator) -> List[Tuple[str, Garment]]:
    """(ASIN, garment) of every product of one category and split."""
    garment_type = CATEGORY_TYPES[category]
    combos = [
        Garment(garment_type, length, colour, pattern) for length in LENGTHS
        for colour in COLOURS for pattern in PATTERNS
    ]
    garments = [g for g in combos for _ in range(copies)]
    order = rng.permutation(len(garments))
    prefix = f'B{SPLIT_CODES[split]}{category[0].upper()}'
    return [(f'{prefix}{i:07d}', garments[j]) for i, j in enumerate(order)]


def write_fashioniq_split(root: str,
                          category: str,
                          split: str,
                          copies: int,
                          pairs_per_image: int,
                          rng: np.random.Generator,
                          img_size: int = 64,
                          ext: str = '.png') -> dict:
    """Draw one category's split: its images, image list and captions.

    Returns:
        dict: ``images`` (ASIN -> path), ``pairs`` (the caption file's
        entries) and ``garments`` (ASIN -> :class:`Garment`).
    """
    products = _split_products(category, split, copies, rng)
    by_garment: Dict[Garment, List[str]] = {}
    images = {}
    for asin, garment in products:
        by_garment.setdefault(garment, []).append(asin)
        image = draw_garment(garment, sample_style(garment, rng),
                             sample_view(rng), img_size)
        path = osp.join(root, 'images', asin + ext)
        if not cv2.imwrite(path, image[..., ::-1]):
            raise OSError(f'Cannot write {path}.')
        images[asin] = path
    pairs = []
    for asin, garment in products:
        for _ in range(pairs_per_image):
            target_garment = _changed_garment(garment, rng)
            candidates = by_garment[target_garment]
            target = candidates[rng.integers(len(candidates))]
            pairs.append(
                dict(
                    target=target,
                    candidate=asin,
                    captions=relative_captions(garment, target_garment, rng)))
    for folder, name, content in (
        ('image_splits', f'split.{category}.{split}.json',
         [asin for asin, _ in products]),
        ('captions', f'cap.{category}.{split}.json', pairs),
    ):
        with open(osp.join(root, folder, name), 'w', encoding='utf-8') as f:
            json.dump(content, f, indent=1)
    return dict(images=images, pairs=pairs, garments=dict(products))


def write_synthetic_fashioniq(root: str,
                              copies: Optional[Dict[str, int]] = None,
                              pairs_per_image: Optional[Dict[str, int]] = None,
                              categories: Sequence[str] = tuple(
                                  CATEGORY_TYPES),
                              img_size: int = 64,
                              ext: str = '.png',
                              seed: int = 0) -> dict:
    """Write a synthetic FashionIQ (train and val) under ``root``.

    The defaults give per category 480 train images with 960 pairs and 360
    val images with 360 pairs (2,880 train pairs and 1,080 val queries in
    all), 64 px PNGs (about 4 MB), and the demo's vocabulary
    (``vocab.txt``, the same words for every seed and size), so that the
    demo checkpoint fine-tunes on it.

    Args:
        root: Output folder (the data set's ``data_root``).
        copies: Products per (length, colour, pattern) combination per
            split; default ``dict(train=4, val=3)``.
        pairs_per_image: Pairs with each image as the reference per split;
            default ``dict(train=2, val=1)``.
        categories: Of ``dress``, ``shirt``, ``toptee``.
        img_size: Side of the square images.
        ext: ``'.png'`` or ``'.jpg'`` (published mirrors differ).
        seed: Everything drawn depends only on it.

    Returns:
        dict: ``root``, ``vocab`` (path) and per split and category the
        :func:`write_fashioniq_split` result (``splits[split][category]``).
    """
    copies = copies or dict(train=4, val=3)
    pairs_per_image = pairs_per_image or dict(train=2, val=1)
    if set(copies) != set(pairs_per_image):
        raise ValueError(f'copies {sorted(copies)} and pairs_per_image '
                         f'{sorted(pairs_per_image)} must name the same '
                         'splits.')
    unknown = [c for c in categories if c not in CATEGORY_TYPES]
    if unknown or ext not in ('.png', '.jpg'):
        raise ValueError(f'Unknown categories {unknown} (known: '
                         f'{tuple(CATEGORY_TYPES)}) or ext {ext!r} (.png or '
                         '.jpg).')
    for folder in ('images', 'captions', 'image_splits'):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    sequences = np.random.SeedSequence(seed).spawn(
        len(copies) * len(categories))
    result = dict(root=root, splits={})
    for i, split in enumerate(copies):
        for j, category in enumerate(categories):
            rng = np.random.default_rng(sequences[i * len(categories) + j])
            result['splits'].setdefault(split, {})[category] = \
                write_fashioniq_split(root, category, split, copies[split],
                                      pairs_per_image[split], rng, img_size,
                                      ext)
    result['vocab'] = write_closed_vocab(synthetic_corpus(), root)
    return result
