"""What the retrieval protocols know of a data set: one entry per row
(product, labels, caption, image identity, caption key), and which
caption-image pairs are positives.

Catalogues repeat descriptions (colourways, re-listed items): two products
can carry the same caption. Text alone cannot tell such products apart, so
by default (``identical_captions='positive'``) a caption counts as a
positive of every image whose product carries that caption, and the
candidate protocol never draws such a product as a negative. Captions are
compared by :func:`mvlt.text.tokenizer.caption_key`, i.e. after the
normalisation the model's tokenizer applies: the one definition of an
identical caption, which ITM and ITC training use as well.
``identical_captions='negative'`` is the naive protocol (only the query's
own product is a positive), kept for comparison with published numbers.
"""
import hashlib
import json
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional

import numpy as np

from mvlt.text.tokenizer import caption_keys

DIRECTIONS = ('text_to_image', 'image_to_text')

#: How a caption identical to the positive's (other product) counts:
#: ``'positive'`` (default) or ``'negative'`` (the naive protocol).
IDENTICAL_CAPTIONS = ('positive', 'negative')

#: Fields of a row that the protocol reads (see :func:`dataset_rows`).
ROW_FIELDS = ('product_index', 'product_id', 'category_label',
              'subcategory_label', 'caption', 'image_key')


@dataclass
class ProtocolRows:
    """What the protocols need to know of a data set, one entry per row.

    Attributes:
        product_index (np.ndarray): (N,) int, contiguous id per product;
            rows of one product are positives of each other.
        product_id (list): (N,) the data set's own product ids (for the
            hash and for messages).
        category_label, subcategory_label (np.ndarray): (N,) int, -1 when
            unknown.
        caption (list[str]): (N,) caption of each row.
        image_key (list[str]): (N,) identity of each row's image (file name,
            or ``row:<i>`` when images are stored in a container): rows with
            the same key show the same image.
        source (str): Description of the data set (type and annotation file)
            for messages.
        caption_key (list[str], optional): (N,) :func:`caption_key` of each
            caption; None compares the captions verbatim.

    The rows are read-only once built: which captions are shared is
    computed on first use and kept.
    """
    product_index: np.ndarray
    product_id: list
    category_label: np.ndarray
    subcategory_label: np.ndarray
    caption: List[str]
    image_key: List[str]
    source: str = ''
    caption_key: Optional[List[str]] = None
    _index: Optional[dict] = field(
        default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.caption)

    def _caption_index(self) -> dict:
        """Integer caption keys and products, and the (key, product) pairs
        of keys that more than one product carries (computed once)."""
        if self._index is None:
            keys = self.caption if self.caption_key is None else \
                self.caption_key
            _, key_id = np.unique(np.asarray(keys, str), return_inverse=True)
            products, product = np.unique(
                self.product_index, return_inverse=True)
            key_id, product = key_id.reshape(-1), product.reshape(-1)
            pairs = np.unique(key_id * len(products) + product)
            pair_key = pairs // len(products)
            shared = np.bincount(pair_key, minlength=key_id.max() + 1) > 1
            self._index = dict(
                key=key_id,
                product=product,
                products=products,
                shared=shared,
                pairs=pairs[shared[pair_key]])
        return self._index

    def matches(self,
                query_rows: np.ndarray,
                candidate_rows: np.ndarray,
                direction: str,
                identical_captions: str = 'positive') -> np.ndarray:
        """Which candidates are positives of their query.

        A (caption row, image row) pair is positive when both rows show one
        product or, with ``identical_captions='positive'``, when the image's
        product carries the caption (another row of it has the same caption
        key): an identical caption of another product describes the image
        as well as the query's own, so it is not a miss. The relation is
        read on the caption side: the other captions of a product that
        shares one caption (COCO) stay negatives.

        Args:
            query_rows (np.ndarray): (Q,) rows of the queries.
            candidate_rows (np.ndarray): (C,) rows shared by every query or
                (Q, C) rows per query.
            direction (str): ``'text_to_image'`` (queries are caption rows)
                or ``'image_to_text'`` (queries are image rows).
            identical_captions (str): ``'positive'`` or ``'negative'`` (the
                naive protocol: only the query's product).

        Returns:
            np.ndarray: (Q, C) bool.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f'direction must be one of {DIRECTIONS}, got '
                             f'{direction!r}.')
        check_identical_captions(identical_captions, 'ProtocolRows.matches')
        query = np.asarray(query_rows)[:, None]
        candidates = np.asarray(candidate_rows)
        if candidates.ndim == 1:
            candidates = candidates[None, :]
        same = self.product_index[query] == self.product_index[candidates]
        if identical_captions == 'negative':
            return same
        captions, images = (query, candidates) if \
            direction == 'text_to_image' else (candidates, query)
        self._add_identical(same, captions, images)
        return same

    def _add_identical(self, same: np.ndarray, captions: np.ndarray,
                       images: np.ndarray) -> None:
        """Set ``same`` (Q, C) where the image row's product carries the
        caption row's key, for keys that several products carry.

        ``captions`` / ``images`` broadcast to ``same``: a caption axis
        against an image axis (full gallery) is joined key by key, so the
        work is the number of such pairs; per-query lists are looked up
        entry by entry.
        """
        index = self._caption_index()
        num = len(index['products'])
        keys = index['key'][captions]
        products = index['product'][images]
        flagged = index['shared'][keys]
        if not flagged.any():
            return
        if keys.shape[1] == 1 and products.shape[0] == 1:
            caption_axis = 0
        elif keys.shape[0] == 1 and products.shape[1] == 1:
            caption_axis = 1
        else:
            where = np.nonzero(np.broadcast_to(flagged, same.shape))
            codes = np.broadcast_to(keys, same.shape)[where] * num + \
                np.broadcast_to(products, same.shape)[where]
            pairs = index['pairs']
            found = np.searchsorted(pairs, codes).clip(max=len(pairs) - 1)
            same[where] |= pairs[found] == codes
            return
        keys, products = keys.reshape(-1), products.reshape(-1)
        rows = np.flatnonzero(flagged.reshape(-1))
        rows = rows[np.argsort(keys[rows], kind='stable')]
        cols = np.argsort(products, kind='stable')
        row_keys, col_products = keys[rows], products[cols]
        pairs = index['pairs'][np.isin(index['pairs'] // num, row_keys)]
        for key, product in zip((pairs // num).tolist(),
                                (pairs % num).tolist()):
            row = _span(rows, row_keys, key)
            col = _span(cols, col_products, product)
            block = (row, col) if caption_axis == 0 else (col, row)
            same[np.ix_(*block)] = True

    def caption_twins(self) -> Dict[int, FrozenSet[int]]:
        """Products that share a caption key with another product.

        Returns:
            dict: ``product_index`` -> the other products carrying one of
            its caption keys; products without such twins are absent.
        """
        index = self._caption_index()
        num = len(index['products'])
        by_key: Dict[int, list] = defaultdict(list)
        for code in index['pairs'].tolist():
            by_key[code // num].append(int(index['products'][code % num]))
        twins: Dict[int, set] = defaultdict(set)
        for members in by_key.values():
            for product in members:
                twins[product].update(m for m in members if m != product)
        return {p: frozenset(t) for p, t in sorted(twins.items())}

    def content_hash(self) -> str:
        """SHA-256 of the rows' products, labels, captions and image names.

        Independent of where the data set lies on disk (only file base names
        enter), so a protocol file travels with the data. The caption keys
        do not enter: they follow from the captions and the tokenizer, and
        are recomputed wherever the rows are read, so files made before the
        keys existed stay valid.
        """
        digest = hashlib.sha256()
        for i in range(len(self)):
            record = [
                str(self.product_id[i]),
                int(self.category_label[i]),
                int(self.subcategory_label[i]), self.caption[i],
                self.image_key[i]
            ]
            digest.update(json.dumps(record, ensure_ascii=False).encode())
            digest.update(b'\n')
        return digest.hexdigest()


def _span(order: np.ndarray, values: np.ndarray, value: int) -> np.ndarray:
    """The entries of ``order`` whose ``values`` (sorted) equal ``value``."""
    start = np.searchsorted(values, value)
    return order[start:np.searchsorted(values, value, 'right')]


def check_identical_captions(value: str, where: str) -> None:
    if value not in IDENTICAL_CAPTIONS:
        raise ValueError(f'{where}: identical_captions must be one of '
                         f'{IDENTICAL_CAPTIONS}, got {value!r}.')


def _describe(dataset) -> str:
    """'Type(annotation file[, splits])' of a data set, for messages."""
    parts = [str(getattr(dataset, 'ann_file', '') or '')]
    splits = getattr(dataset, 'splits', None)
    if splits:
        parts.append('split ' + '+'.join(map(str, splits)))
    parts = [p for p in parts if p]
    return f"{type(dataset).__name__}({', '.join(parts)})" if parts else \
        type(dataset).__name__


def dataset_rows(dataset, tokenizer=None) -> ProtocolRows:
    """Read the protocol fields of every row of an MVLT data set.

    Reads ``get_data_info(i)`` of each row (no image is decoded; an HDF5
    data set reads the caption cell). A row needs ``caption`` and
    ``product_index``; labels default to -1; the image identity is the base
    name of ``img_path`` or, for images in a container file, the row.

    Args:
        dataset: The data set.
        tokenizer (optional): The model's tokenizer; with it the rows carry
            :func:`caption_key` of each caption, without it captions are
            compared verbatim.

    Raises:
        KeyError: A row lacks ``caption`` or ``product_index``; the message
            names the row and the data set.
    """
    source = _describe(dataset)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if not infos:
        raise ValueError(f'{source} has no rows to build a retrieval '
                         'protocol from.')
    columns: Dict[str, list] = defaultdict(list)
    for row, info in enumerate(infos):
        for key in ('caption', 'product_index'):
            if key not in info:
                raise KeyError(
                    f'{source}, row {row}: no {key!r}; retrieval needs data '
                    'sets whose samples carry caption and product_index.')
        columns['caption'].append(str(info['caption']))
        columns['product_index'].append(int(info['product_index']))
        columns['product_id'].append(
            info.get('product_id', info['product_index']))
        columns['category_label'].append(int(info.get('category_label', -1)))
        columns['subcategory_label'].append(
            int(info.get('subcategory_label', -1)))
        img_path = info.get('img_path')
        columns['image_key'].append(
            osp.basename(str(img_path)) if img_path else f'row:{row}')
    return ProtocolRows(
        product_index=np.asarray(columns['product_index'], np.int64),
        product_id=columns['product_id'],
        category_label=np.asarray(columns['category_label'], np.int64),
        subcategory_label=np.asarray(columns['subcategory_label'], np.int64),
        caption=columns['caption'],
        image_key=columns['image_key'],
        source=source,
        caption_key=None if tokenizer is None else caption_keys(
            columns['caption'], tokenizer))
