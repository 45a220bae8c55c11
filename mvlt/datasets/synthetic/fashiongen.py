"""A synthetic Fashion-Gen in the exact HDF5 layout of the original release.

Each split is one file ``fashiongen_{S}_{S}_{split}.h5`` holding
``input_image`` (N, S, S, 3) uint8 (chunked one image per chunk, gzip), the
text fields as (N, 1) fixed-length Latin-1 byte strings
(``input_description``, ``input_name``, ``input_category``,
``input_subcategory``, ``input_gender``, ``input_brand``,
``input_composition``, ``input_concat_description``, ``input_department``,
``input_season``, ``input_pose``), ``input_productID`` (N, 1) int32,
``input_msrpUSD`` (N, 1) float32 and ``index`` / ``index_2`` (N, 1) int64.
Rows of one product (1-6 views) are consecutive and share the product id and
every text field but the pose.

The garments are drawn by :mod:`.garments`; the description states every
visible attribute ("A pair of short red dotted trousers in crêpe."), so a
model has to look at the image to rank a product's caption first. Products
of one split have distinct attribute combinations as long as the split has
at most 480 products; the category is the garment type and the sub-category
the type + length, so products of one sub-category differ in colour or
pattern. The validation split draws its products independently of the
training split (new product ids, new renderings; attribute combinations may
recur).
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import h5py
import numpy as np

from mvlt.text.tokenizer import SPECIAL_TOKENS, write_vocab_file
from .garments import (Garment, Style, View, all_garments, draw_garment,
                       sample_style, sample_view)

SPLITS = ('train', 'validation')
FILE_TEMPLATE = 'fashiongen_{size}_{size}_{split}.h5'
MATERIALS = ('cotton', 'wool', 'linen', 'denim', 'crêpe', 'piqué', 'lamé',
             'suède')
BRANDS = ('Maison Lumière', 'Atelier Sévigné', 'Hélène Marchand',
          'Noël & Frères', 'Zoë Lark', 'Studio Ångström', 'Crème Couture',
          'Bleu Façon')
COMPOSITIONS = ('100% coton', '100% laine vierge', '70% lin, 30% coton',
                '100% soie', '95% polyester, 5% élasthanne',
                "100% cuir d'agneau")
SEASONS = ('SS2017', 'FW2017', 'SS2018', 'FW2018')
TEXT_FIELDS = ('input_description', 'input_name', 'input_category',
               'input_subcategory', 'input_gender', 'input_brand',
               'input_composition', 'input_concat_description',
               'input_department', 'input_season', 'input_pose')
#: Images drawn and written per block (a few MB of memory at 256 px).
_BLOCK = 64


@dataclass(frozen=True)
class Product:
    """One synthetic product: attributes, rendering and catalogue text."""

    product_id: int
    garment: Garment
    style: Style
    views: Tuple[View, ...]
    material: str
    brand: str
    composition: str
    gender: str
    season: str
    price: float

    @property
    def description(self) -> str:
        """'A pair of short red dotted trousers in crêpe.'"""
        phrase = self.garment.phrase
        return f'{phrase[0].upper()}{phrase[1:]} in {self.material}.'

    def text_fields(self, view_index: int) -> Dict[str, str]:
        """Every Fashion-Gen text field of the row of one view."""
        return dict(
            input_description=self.description,
            input_name=self.garment.name,
            input_category=self.garment.category,
            input_subcategory=self.garment.subcategory,
            input_gender=self.gender,
            input_brand=self.brand,
            input_composition=self.composition,
            input_concat_description=f'{self.garment.name}. '
            f'{self.description} {self.composition}.',
            input_department='CLOTHING',
            input_season=self.season,
            input_pose=f'id_gridfs_{view_index + 1}')


def _product_garments(num_products: int,
                      rng: np.random.Generator) -> List[Garment]:
    """Distinct combinations, balanced over sub-categories.

    The 480 combinations are shuffled within each sub-category and dealt
    round-robin over the sub-categories, so any prefix covers them all
    evenly; beyond 480 products a new shuffled round starts (captions then
    repeat).
    """
    groups: Dict[str, List[Garment]] = {}
    for garment in all_garments():
        groups.setdefault(garment.subcategory, []).append(garment)
    chosen: List[Garment] = []
    while len(chosen) < num_products:
        shuffled = [[g[i] for i in rng.permutation(len(g))]
                    for g in groups.values()]
        for rank in range(max(len(g) for g in shuffled)):
            chosen.extend(g[rank] for g in shuffled if rank < len(g))
    chosen = chosen[:num_products]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def sample_products(num_products: int,
                    views: Tuple[int, int],
                    rng: np.random.Generator,
                    first_id: int = 100000) -> List[Product]:
    """Draw the products of one split.

    Args:
        num_products: How many products.
        views: Inclusive (min, max) photos per product.
        rng: Source of every random choice (deterministic for a seed).
        first_id: Product id of the first product; ids are consecutive.
    """
    low, high = int(views[0]), int(views[1])
    if not 1 <= low <= high:
        raise ValueError(f'views must be (min, max) with 1 <= min <= max, '
                         f'got {views}.')
    products = []
    for i, garment in enumerate(_product_garments(num_products, rng)):
        num_views = int(rng.integers(low, high + 1))
        gender = 'WOMEN' if garment.garment_type in ('dress',
                                                     'skirt') else str(
                                                         rng.choice(
                                                             ('MEN', 'WOMEN')))
        products.append(
            Product(
                product_id=first_id + i,
                garment=garment,
                style=sample_style(garment, rng),
                views=tuple(sample_view(rng) for _ in range(num_views)),
                material=str(rng.choice(MATERIALS)),
                brand=str(rng.choice(BRANDS)),
                composition=str(rng.choice(COMPOSITIONS)),
                gender=gender,
                season=str(rng.choice(SEASONS)),
                price=float(np.round(rng.uniform(40, 900), 2))))
    return products


def _latin1_column(values: Sequence[str], field: str) -> np.ndarray:
    """(N, 1) fixed-length byte strings, Latin-1 as in Fashion-Gen."""
    try:
        encoded = [v.encode('latin-1') for v in values]
    except UnicodeEncodeError as err:
        raise ValueError(f'{field}: {err.object!r} is not Latin-1 text, '
                         'which the Fashion-Gen layout requires.') from None
    width = max(1, max(len(b) for b in encoded))
    return np.array(encoded, dtype=f'S{width}').reshape(-1, 1)


def synthetic_corpus() -> List[str]:
    """Every text any synthetic product can have, in every field (so that
    any choice of caption fields tokenizes without [UNK]); the vocabulary
    made from it is the same for every seed and size."""
    corpus = []
    for g, garment in enumerate(all_garments()):
        for m, material in enumerate(MATERIALS):
            product = Product(
                product_id=0,
                garment=garment,
                style=Style((0.0, 0.0, 0.0), (0.0, 0.0), 1.0),
                views=(),
                material=material,
                brand=BRANDS[(g + m) % len(BRANDS)],
                composition=COMPOSITIONS[(g + m) % len(COMPOSITIONS)],
                gender='WOMEN',
                season=SEASONS[0],
                price=0.0)
            corpus += product.text_fields(0).values()
    corpus += list(SEASONS) + ['MEN'
                               ] + [f'id_gridfs_{k}' for k in range(1, 10)]
    return corpus


def write_closed_vocab(corpus: Sequence[str], out_dir: str) -> str:
    """Write a BERT-layout WordPiece ``vocab.txt`` holding every word of a
    closed corpus whole, plus every character alone and as a ``##`` piece.

    ``mvlt.utils.build_vocab`` (the ``tokenizers`` WordPiece trainer) is not
    used here: it breaks ties between equally frequent merges differently
    from run to run, so the same seed gave different vocabularies (and ids).
    On a closed corpus listing the words is exact and deterministic.
    Words are normalised as uncased BERT does (lower case, accents
    stripped), so 'Café' is the word 'cafe'.

    Returns:
        str: Path of ``vocab.txt`` ([PAD] [UNK] [CLS] [SEP] [MASK] first).
    """
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer
    normalizer = BertNormalizer(lowercase=True, strip_accents=True)
    pre_tokenizer = BertPreTokenizer()
    words = set()
    for text in corpus:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(
            normalizer.normalize_str(text)))
    chars = sorted({c for word in words for c in word})
    entries = list(SPECIAL_TOKENS) + chars + [f'##{c}' for c in chars] + \
        sorted(words - set(chars))
    return write_vocab_file(entries, out_dir)


def write_fashiongen_file(path: str,
                          products: Sequence[Product],
                          img_size: int = 256,
                          compression: str = 'gzip',
                          compression_opts: int = 1) -> int:
    """Draw the products and write one Fashion-Gen layout HDF5 file.

    Args:
        path: Output file (overwritten).
        products: From :func:`sample_products`.
        img_size: Side of the square images.
        compression: h5py filter of ``input_image`` ('gzip' is readable by
            every HDF5 tool; 'lzf' is faster but h5py-only).
        compression_opts: gzip level.

    Returns:
        int: Number of rows (images).
    """
    rows = [(p, v) for p in products for v in range(len(p.views))]
    num_rows = len(rows)
    if num_rows == 0:
        raise ValueError(f'{path}: no products to write.')
    from mvlt.datasets.transforms.loading import close_hdf5

    # A handle this process cached for reading would keep the old file open.
    close_hdf5(path)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with h5py.File(path, 'w') as f:
        images = f.create_dataset(
            'input_image', (num_rows, img_size, img_size, 3),
            dtype=np.uint8,
            chunks=(1, img_size, img_size, 3),
            compression=compression,
            compression_opts=compression_opts
            if compression == 'gzip' else None,
            track_times=False)
        block = np.empty((_BLOCK, img_size, img_size, 3), np.uint8)
        for start in range(0, num_rows, _BLOCK):
            stop = min(start + _BLOCK, num_rows)
            for j, (product, view) in enumerate(rows[start:stop]):
                block[j] = draw_garment(product.garment, product.style,
                                        product.views[view], img_size)
            images[start:stop] = block[:stop - start]
        fields = [p.text_fields(v) for p, v in rows]
        for field in TEXT_FIELDS:
            f.create_dataset(
                field,
                data=_latin1_column([row[field] for row in fields], field),
                track_times=False)
        f.create_dataset(
            'input_productID',
            data=np.array([p.product_id for p, _ in rows],
                          np.int32).reshape(-1, 1),
            track_times=False)
        f.create_dataset(
            'input_msrpUSD',
            data=np.array([p.price for p, _ in rows],
                          np.float32).reshape(-1, 1),
            track_times=False)
        index = np.arange(num_rows, dtype=np.int64).reshape(-1, 1)
        f.create_dataset('index', data=index, track_times=False)
        f.create_dataset('index_2', data=index.copy(), track_times=False)
    return num_rows


def write_synthetic_fashiongen(out_dir: str,
                               train_products: int = 420,
                               val_products: int = 140,
                               views: Tuple[int, int] = (1, 6),
                               seed: int = 0,
                               img_size: int = 256,
                               compression: str = 'gzip') -> dict:
    """Write a train and a validation split and a matching vocabulary.

    The defaults give about 1,470 train and 490 validation images (3.5 views
    per product on average).

    Args:
        out_dir: Folder that receives ``fashiongen_{S}_{S}_train.h5``,
            ``fashiongen_{S}_{S}_validation.h5`` and ``vocab.txt``.
        train_products, val_products: Products per split.
        views: Inclusive (min, max) photos per product.
        seed: Everything drawn depends only on it.
        img_size: Side of the square images (256 as in Fashion-Gen).
        compression: Filter of ``input_image``.

    Returns:
        dict: ``train`` / ``validation`` (file paths), ``vocab`` (path),
        ``num_images`` and ``num_products`` (per split).
    """
    root = np.random.SeedSequence(seed)
    train_seq, val_seq = root.spawn(2)
    splits = dict(
        train=sample_products(train_products, views,
                              np.random.default_rng(train_seq), 100000),
        validation=sample_products(val_products, views,
                                   np.random.default_rng(val_seq), 500000))
    result = dict(num_images={}, num_products={})
    for split, products in splits.items():
        path = osp.join(out_dir,
                        FILE_TEMPLATE.format(size=img_size, split=split))
        result[split] = path
        result['num_images'][split] = write_fashiongen_file(
            path, products, img_size, compression)
        result['num_products'][split] = len(products)
    result['vocab'] = write_closed_vocab(synthetic_corpus(), out_dir)
    return result
