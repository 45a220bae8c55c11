"""Retrieval protocols: which captions and images each query is ranked
against.

Two protocols are supported:

* **Candidate lists** (Fashion-Gen's 101-candidate protocol,
  ``docs/method.md`` section 4):
  for each of N query products, its own image (text->image) or caption
  (image->text) and ``num_negatives`` (100) of other products of the same
  sub-category. The lists are drawn once per split with a seed by
  ``tools/misc/make_retrieval_protocol.py`` and stored in a JSON file, so that
  every run and every model is scored on the same candidates. The file keeps
  a content hash of the data set it was made for; loading it against another
  split or data set is an error.
* **Full gallery** (MS-COCO 5K as in ViLT, and Fashion-Gen's second
  protocol): every query against every distinct image / caption of the split.
  Nothing is stored: the gallery follows from the data set.

Rows, products, captions and labels come from :func:`dataset_rows`
(:mod:`.retrieval_rows`), which works for any MVLT data set whose data infos
carry ``caption``, ``product_index`` (and, for the candidate protocol,
``subcategory_label`` / ``category_label``).

Identical captions of different products (catalogues repeat descriptions):
by default (``identical_captions='positive'``) a product whose caption key
(:func:`caption_key`: the caption after the tokenizer's normalisation)
equals one of the query product's is never drawn as a negative, and in
ranking (both protocols) it counts as a positive
(:meth:`ProtocolRows.matches`). ``identical_captions='negative'`` is the
naive protocol, for comparison with published numbers.
"""
import json
import os
import os.path as osp
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from mvlt.text.tokenizer import caption_key, caption_keys
from .retrieval_rows import (DIRECTIONS, IDENTICAL_CAPTIONS, ROW_FIELDS,
                             ProtocolRows, check_identical_captions,
                             dataset_rows)

__all__ = [
    'DIRECTIONS', 'IDENTICAL_CAPTIONS', 'ROW_FIELDS', 'PROTOCOL_FORMAT',
    'ProtocolRows', 'caption_key', 'caption_keys', 'check_identical_captions',
    'dataset_rows', 'CandidateTask', 'CandidateProtocol', 'GalleryProtocol',
    'build_candidate_protocol', 'save_protocol', 'load_candidate_protocol',
    'build_gallery_protocol', 'caption_image_pairs'
]

PROTOCOL_FORMAT = 'mvlt-retrieval-protocol/1'


# --------------------------------------------------------------- protocols
def caption_image_pairs(direction: str, queries: np.ndarray,
                        candidates: np.ndarray) -> np.ndarray:
    """(P, 2) (caption row, image row) of P query-candidate pairs.

    Args:
        direction (str): ``'text_to_image'`` (queries are caption rows) or
            ``'image_to_text'`` (queries are image rows).
        queries, candidates (np.ndarray): (P,) rows, pair by pair.
    """
    if direction == 'text_to_image':
        return np.stack([queries, candidates], axis=1)
    return np.stack([candidates, queries], axis=1)


@dataclass
class CandidateTask:
    """One direction of a candidate-list protocol.

    Attributes:
        direction (str): ``'text_to_image'`` (query = caption of a row,
            candidates = images of rows) or ``'image_to_text'``.
        query_rows (np.ndarray): (Q,) data set rows of the queries.
        candidate_rows (np.ndarray): (Q, C) rows of each query's candidates
            (the positive first).
    """
    direction: str
    query_rows: np.ndarray
    candidate_rows: np.ndarray

    def pairs(self) -> np.ndarray:
        """(Q * C, 2) (caption row, image row) of every query-candidate."""
        return caption_image_pairs(
            self.direction,
            np.repeat(self.query_rows, self.candidate_rows.shape[1]),
            self.candidate_rows.reshape(-1))


@dataclass
class CandidateProtocol:
    """A candidate-list protocol (loaded by :func:`load_candidate_protocol`).

    Attributes:
        name (str): Protocol label of the reported metrics.
        split (str): Split label of the reported metrics.
        tasks (list[CandidateTask]): One per direction.
        info (dict): The file's header (seed, sizes, fill records).
    """
    name: str
    split: str
    tasks: List[CandidateTask]
    info: dict = field(default_factory=dict)


@dataclass
class GalleryProtocol:
    """A full-gallery protocol: queries against every distinct item.

    Text->image ranks each of ``text_query_rows`` against all
    ``image_rows``; image->text ranks each of ``image_query_rows`` against
    all ``caption_rows``. Without a query limit the two directions share one
    caption x image score matrix.

    Attributes:
        name, split (str): Labels of the reported metrics.
        caption_rows (np.ndarray): (Nc,) one row per distinct caption.
        image_rows (np.ndarray): (Ni,) one row per distinct image.
        text_query_rows (np.ndarray): Caption rows used as queries.
        image_query_rows (np.ndarray): Image rows used as queries.
        directions (tuple[str]): The directions to rank.
    """
    name: str
    split: str
    caption_rows: np.ndarray
    image_rows: np.ndarray
    text_query_rows: np.ndarray
    image_query_rows: np.ndarray
    directions: Sequence[str] = DIRECTIONS


def _product_groups(rows: ProtocolRows) -> 'OrderedDict[int, np.ndarray]':
    groups: Dict[int, list] = defaultdict(list)
    for row, product in enumerate(rows.product_index.tolist()):
        groups[product].append(row)
    return OrderedDict(
        (p, np.asarray(groups[p], np.int64)) for p in sorted(groups))


def build_candidate_protocol(rows: ProtocolRows,
                             num_queries: int = 1000,
                             num_negatives: int = 100,
                             seed: int = 0,
                             directions: Sequence[str] = DIRECTIONS,
                             name: str = 'fashiongen-101',
                             split: str = 'test',
                             identical_captions: str = 'positive') -> dict:
    """Draw the candidate lists of the 101-candidate protocol.

    For each of ``num_queries`` products (all products when there are
    fewer), and for each direction: a query row of the product, its positive
    (another draw among the product's rows: an image for text->image, a
    caption for image->text) and one row of each of ``num_negatives`` other
    products of the same sub-category. When a sub-category has too few other
    products the rest comes from the same category, then from any product;
    each query's record says how many came from where, and the header lists
    the short sub-categories.

    With ``identical_captions='positive'`` no negative shares a caption key
    with the query's product (:meth:`ProtocolRows.caption_twins`; such
    products are left out of every pool, so a sub-category holding a twin
    may need a fill). The header records the switch and
    ``shared_caption_products``, the number of products of the split that
    share a caption key with another product.

    Args:
        rows (ProtocolRows): The split, from :func:`dataset_rows`.
        num_queries (int): N (1,000 in the reference).
        num_negatives (int): Negatives per query (100).
        seed (int): Seed of every draw.
        directions (Sequence[str]): Directions to draw.
        name, split (str): Labels stored in the file.
        identical_captions (str): ``'positive'`` (never draw a product with
            the query's caption as a negative) or ``'negative'`` (the naive
            protocol).

    Returns:
        dict: The JSON-serialisable protocol (see :func:`save_protocol`).

    Raises:
        ValueError: Fewer than ``num_negatives + 1`` products in the split,
            or fewer than ``num_negatives`` without a query's twins.
    """
    unknown = [d for d in directions if d not in DIRECTIONS]
    if unknown:
        raise ValueError(f'Unknown directions {unknown}; use {DIRECTIONS}.')
    check_identical_captions(identical_captions, 'build_candidate_protocol')
    all_twins = rows.caption_twins()
    twins = all_twins if identical_captions == 'positive' else {}
    groups = _product_groups(rows)
    products = np.asarray(list(groups), np.int64)
    if len(products) < num_negatives + 1:
        raise ValueError(
            f'{rows.source} has {len(products)} products, fewer than the '
            f'{num_negatives} negatives + 1 positive a query needs; lower '
            '--num-negatives.')
    first_row = {p: r[0] for p, r in groups.items()}
    subcat = {p: int(rows.subcategory_label[first_row[p]]) for p in groups}
    cat = {p: int(rows.category_label[first_row[p]]) for p in groups}
    by_subcat: Dict[int, list] = defaultdict(list)
    by_cat: Dict[int, list] = defaultdict(list)
    for p in products.tolist():
        by_subcat[subcat[p]].append(p)
        by_cat[cat[p]].append(p)

    rng = np.random.default_rng(seed)
    num_q = min(num_queries, len(products))
    query_products = np.sort(rng.choice(products, num_q, replace=False))
    short = {
        str(s): len(members) - 1
        for s, members in sorted(by_subcat.items())
        if len(members) - 1 < num_negatives
    }

    def negatives_of(product: int) -> tuple:
        # Pools in order of preference; the wider ones are only built for
        # products whose sub-category is short.
        skip = twins.get(product, frozenset()) | {product}
        pools = (
            lambda: [q for q in by_subcat[subcat[product]] if q not in skip],
            lambda: [
                q for q in by_cat[cat[product]]
                if q not in skip and subcat[q] != subcat[product]
            ],
            lambda: [
                q for q in products.tolist()
                if cat[q] != cat[product] and q not in skip
            ],
        )
        chosen, counts = [], []
        for make_pool in pools:
            if len(chosen) == num_negatives:
                counts.append(0)
                continue
            pool = make_pool()
            take = min(num_negatives - len(chosen), len(pool))
            if take > 0:
                chosen.extend(rng.choice(pool, take, replace=False).tolist())
            counts.append(take)
        if len(chosen) < num_negatives:
            raise ValueError(
                f'{rows.source}: product {rows.product_id[groups[product][0]]}'
                f' has {len(chosen)} other products whose caption differs '
                f'from its own, fewer than the {num_negatives} negatives a '
                'query needs; lower --num-negatives.')
        return chosen, counts

    out_dirs = OrderedDict()
    for direction in directions:
        queries, candidates, fills = [], [], []
        for product in query_products.tolist():
            own = groups[product]
            query_row = int(rng.choice(own))
            positive_row = int(rng.choice(own))
            negatives, counts = negatives_of(product)
            negative_rows = [int(rng.choice(groups[q])) for q in negatives]
            queries.append(query_row)
            candidates.append([positive_row] + negative_rows)
            fills.append(counts)
        out_dirs[direction] = dict(
            query_rows=queries,
            candidate_rows=candidates,
            negatives_from=fills,
        )
    filled = sum(1 for d in out_dirs.values() for counts in d['negatives_from']
                 if counts[0] < num_negatives)
    return OrderedDict(
        format=PROTOCOL_FORMAT,
        name=name,
        split=split,
        dataset=OrderedDict(
            source=rows.source,
            num_rows=len(rows),
            num_products=len(products),
            content_hash=rows.content_hash()),
        seed=seed,
        num_queries=num_q,
        num_negatives=num_negatives,
        positive_index=0,
        negative_pools=['subcategory', 'category', 'any'],
        short_subcategories=short,
        filled_queries=filled,
        identical_captions=identical_captions,
        shared_caption_products=len(all_twins),
        directions=out_dirs)


def save_protocol(protocol: dict, path: str) -> None:
    """Write a protocol as JSON (lists on one line each), atomically."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(protocol, f, ensure_ascii=False, separators=(',', ':'))
    os.replace(tmp, path)


def load_candidate_protocol(path: str,
                            rows: ProtocolRows,
                            directions: Optional[Sequence[str]] = None,
                            split: Optional[str] = None) -> CandidateProtocol:
    """Load a protocol file and check that it belongs to ``rows``.

    Args:
        path (str): File made by ``tools/misc/make_retrieval_protocol.py``.
        rows (ProtocolRows): The test split (:func:`dataset_rows`).
        directions (Sequence[str], optional): Directions to keep (default:
            those in the file).
        split (str, optional): Split label to report instead of the file's.

    Raises:
        FileNotFoundError: The file is missing (the message gives the
            command that makes it).
        ValueError: Not a protocol file, or made for another data set or
            split (content hash mismatch), or rows out of range.
    """
    make = ('python tools/misc/make_retrieval_protocol.py CONFIG --out '
            f'{path}')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Retrieval protocol file {path} does not exist; make it once '
            f'per split with `{make}`.')
    try:
        with open(path, encoding='utf-8') as f:
            protocol = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'{path} is not a retrieval protocol file (invalid '
                         f'JSON: {err}).') from None
    found = protocol.get('format') if isinstance(protocol, dict) else None
    if found != PROTOCOL_FORMAT:
        raise ValueError(
            f'{path} is not a retrieval protocol file (format {found!r}, '
            f'expected {PROTOCOL_FORMAT!r}); make one with `{make}`.')
    made_for = protocol['dataset']
    current = rows.content_hash()
    if made_for['content_hash'] != current:
        raise ValueError(
            f'Retrieval protocol {path} was made for another data set or '
            f"split: {made_for['source']} with {made_for['num_rows']} rows "
            f"(content hash {made_for['content_hash'][:12]}), but the test "
            f'set is {rows.source} with {len(rows)} rows (content hash '
            f'{current[:12]}). Point the test config at the protocol file of '
            f'this split, or rebuild it with `{make}`.')
    tasks = []
    wanted = directions or list(protocol['directions'])
    for direction in wanted:
        if direction not in protocol['directions']:
            raise KeyError(f'{path} has no {direction!r} direction; it holds '
                           f"{list(protocol['directions'])}.")
        record = protocol['directions'][direction]
        query_rows = np.asarray(record['query_rows'], np.int64)
        candidate_rows = np.asarray(record['candidate_rows'], np.int64)
        if candidate_rows.ndim != 2 or len(candidate_rows) != len(query_rows):
            raise ValueError(f'{path}: {direction} candidate_rows must be a '
                             '(num_queries, num_candidates) table.')
        if min(query_rows.min(), candidate_rows.min()) < 0 or max(
                query_rows.max(), candidate_rows.max()) >= len(rows):
            raise ValueError(f'{path}: {direction} refers to rows outside '
                             f'the {len(rows)} rows of {rows.source}.')
        tasks.append(CandidateTask(direction, query_rows, candidate_rows))
    info = {k: v for k, v in protocol.items() if k != 'directions'}
    return CandidateProtocol(
        name=protocol.get('name', 'candidates'),
        split=split or protocol.get('split', 'test'),
        tasks=tasks,
        info=info)


def build_gallery_protocol(rows: ProtocolRows,
                           name: str = 'full-gallery',
                           split: str = 'test',
                           num_queries: Optional[int] = None,
                           seed: int = 0,
                           directions: Sequence[str] = DIRECTIONS
                           ) -> GalleryProtocol:
    """The full-gallery protocol of a split.

    The image gallery has one row per distinct image (``image_key``), the
    caption gallery one row per distinct (product, caption): identical
    captions of two products stay two entries, and which of them are
    positives of a query is :meth:`ProtocolRows.matches`'s. With
    ``num_queries`` a seeded subset of each gallery is used as queries (the
    galleries themselves stay complete).
    """
    seen_images, image_rows = set(), []
    seen_captions, caption_rows = set(), []
    for row in range(len(rows)):
        key = rows.image_key[row]
        if key not in seen_images:
            seen_images.add(key)
            image_rows.append(row)
        product_caption = (int(rows.product_index[row]), rows.caption[row])
        if product_caption not in seen_captions:
            seen_captions.add(product_caption)
            caption_rows.append(row)
    image_rows = np.asarray(image_rows, np.int64)
    caption_rows = np.asarray(caption_rows, np.int64)
    text_queries, image_queries = caption_rows, image_rows
    if num_queries is not None:
        rng = np.random.default_rng(seed)
        if num_queries < len(caption_rows):
            text_queries = np.sort(
                rng.choice(caption_rows, num_queries, replace=False))
        if num_queries < len(image_rows):
            image_queries = np.sort(
                rng.choice(image_rows, num_queries, replace=False))
    return GalleryProtocol(
        name=name,
        split=split,
        caption_rows=caption_rows,
        image_rows=image_rows,
        text_query_rows=text_queries,
        image_query_rows=image_queries,
        directions=tuple(directions))
