"""Queries of a catalogue-search index: text -> products, image ->
captions and products, product -> more like this.

A text query is ranked as :meth:`MVLTInferencer.rank_images` ranks a gallery
(ITM over the ITC top k', the rest below in ITC order): faiss shortlists the
nearest embeddings, and the one ranking function
:func:`mvlt.models.utils.rank_candidates` (with ``itc_similarity``) scores
and orders them, with ITM scores from
:meth:`MVLTInferencer.score` (:meth:`MVLT.score_pairs`). User input is
checked first (:func:`check_query`, :func:`decode_image`) and refused with a
:class:`SearchInputError` that says what to change.
"""
import threading
import time
from typing import Callable, List, Optional, Sequence

import numpy as np

from mvlt.image import ImageDecodeError
from mvlt.image import decode_image as decode_upload
from mvlt.utils.ranking import rank_candidates
from .ann_index import SHORTLIST_MARGIN, shortlists
from .composed_search import ComposedSearchMixin
from .product_groups import ProductPhotos, group_by_product
from .query_check import judge_word_pieces
from .ranking_choice import shortlist_scores
from .search_index import SearchIndex

#: Defaults of the input limits (a description, not an essay; a photo, not a
#: poster: 40 megapixels is a large camera's output).
MAX_QUERY_CHARS = 1000
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000


class SearchInputError(ValueError):
    """A query or upload the search refuses; the message is for the user."""


def check_query(text: Optional[str], max_chars: int = MAX_QUERY_CHARS) -> str:
    """A text query stripped of outer white space.

    Raises:
        SearchInputError: Empty, or longer than ``max_chars``.
    """
    text = (text or '').strip()
    if not text:
        raise SearchInputError(
            'The query is empty: describe the product, e.g. "long purple '
            'checked trousers".')
    if len(text) > max_chars:
        raise SearchInputError(
            f'The query has {len(text):,} characters; at most {max_chars:,} '
            'are accepted. Describe the product in a few words (colour, '
            'pattern, garment, length).')
    return text


def decode_image(data: bytes,
                 max_bytes: int = MAX_UPLOAD_BYTES,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An uploaded image file -> RGB uint8 (H, W, 3), by the project's one
    decoder (:func:`mvlt.image.decode_image`: transparency onto white,
    16-bit and CMYK converted, EXIF orientation applied).

    The size in pixels and the aspect ratio are read from the header and
    checked before anything is decoded, so a decompression bomb (a small
    file of a huge image) is refused without being expanded.

    Raises:
        SearchInputError: Empty, over ``max_bytes``, not an image Pillow
            reads, truncated, or over ``max_pixels`` pixels.
    """
    if not data:
        raise SearchInputError('The upload is empty: choose an image file.')
    if len(data) > max_bytes:
        raise SearchInputError(
            f'The upload has {len(data) / 2**20:.1f} MiB; at most '
            f'{max_bytes / 2**20:.1f} MiB are accepted.')
    try:
        return decode_upload(data, name='the upload', max_pixels=max_pixels)
    except ImageDecodeError as err:
        raise SearchInputError(str(err)) from None


def parse_group(group: str) -> bool:
    """``'product'`` (one result per product) -> True, ``'photo'`` ->
    False.

    Raises:
        SearchInputError: Anything else.
    """
    if group not in ('product', 'photo'):
        raise SearchInputError(
            f"group must be 'product' or 'photo', got {group!r}.")
    return group == 'product'


def _check_counts(topk: int, rerank_k: int) -> None:
    if not isinstance(topk, (int, np.integer)) or not 1 <= topk <= 100:
        raise SearchInputError(f'k must be between 1 and 100, got {topk}.')
    if not isinstance(rerank_k, (int, np.integer)) or not 0 <= rerank_k <= 256:
        raise SearchInputError(
            f"k' (ITM re-ranking) must be between 0 and 256, got {rerank_k}.")


class CatalogueSearch(ComposedSearchMixin):
    """Search a :class:`SearchIndex` by text, by image, by image and words
    (:meth:`search_composed`), or for products like a given one.

    Results are dicts with the item's ``row``, ``product_id``, ``caption``,
    ``category``, ``thumbnail`` (relative to the index folder), ``score``
    and ``by`` (``'itm'``: ITM matching probability; ``'fused'``: ITM
    probability + ITC similarity; ``'itc'``: cosine similarity of ITC
    embeddings), best first. Every query returns
    ``timing`` (ms): ``itc`` (embedding the query and the nearest-neighbour
    search), ``itm`` (re-ranking) and ``total``. Queries are serialised by a
    lock (one model on a few CPU cores).

    Args:
        index: The opened index.
        max_query_chars: Longest text query accepted.
    """

    def __init__(self,
                 index: SearchIndex,
                 max_query_chars: int = MAX_QUERY_CHARS) -> None:
        self.index = index
        self.inferencer = index.inferencer
        self.max_query_chars = max_query_chars
        self._lock = threading.Lock()
        self._images: Optional[List[np.ndarray]] = None
        self._live: Optional[np.ndarray] = None
        self.photos = ProductPhotos(index.items)
        #: How a text query's ITC top k' is re-scored: ITM, or ITM + ITC
        #: where the build measured the fused score best.
        self.rerank_ranking = 'fused' if (index.meta.get('ranking') or {}).get(
            'default') == 'fused' else 'itm'

    def __len__(self) -> int:
        """Rows (photos) of the index, removed ones included (row ids are
        never reused)."""
        return len(self.index.items)

    def _gallery_images(self) -> List[np.ndarray]:
        """Every served gallery image, decoded once (exact-ITM indexes
        only); ``self._live[i]`` is the row of image i."""
        if self._images is None:
            removed = self.index.removed['images']
            self._live = removed.keep(np.arange(len(self)))
            self._images = self.index.gallery.read_many(self._live)
        return self._images

    def _item(self, row: int, score: float, by: str) -> dict:
        return dict(self.index.items[row], score=float(score), by=by)

    def _require_itc(self, what: str) -> None:
        if not self.index.has_itc:
            raise SearchInputError(
                f'{what} needs ITC embeddings, and this index was built for '
                'exact ITM scoring (the model has no ITC head).')

    def _shortlist(self, table: str, query: np.ndarray, count: int) -> tuple:
        """Candidate rows (ascending) of ``table`` (``'images'`` or
        ``'captions'``) and their exact ITC similarities; rows removed by
        updates are never among them."""
        index = self.index
        faiss_index, embeds = (index.image_index, index.image_embeds) \
            if table == 'images' else (index.caption_index,
                                       index.caption_embeds)
        return shortlists(faiss_index, embeds, query,
                          count + SHORTLIST_MARGIN, index.removed[table])[0]

    @staticmethod
    def _exact(hits: List[dict],
               start: float,
               timing: dict,
               rows: Optional[np.ndarray] = None) -> List[tuple]:
        """(row, score, by) of the inferencer's exact-ITM ranking ``hits``,
        which took the ITM time since ``start``; ``rows[i]`` is the row of
        hit index i (identity when None)."""
        timing['itm'] = 1000 * (time.perf_counter() - start)
        return [(h['index'] if rows is None else int(rows[h['index']]),
                 h['score'], h['by']) for h in hits]

    @staticmethod
    def _rank(rows: np.ndarray,
              similarity: np.ndarray,
              topk: int,
              rerank_k: int,
              itm_of: Callable[[np.ndarray], np.ndarray],
              timing: dict,
              ranking: str = 'itm') -> List[tuple]:
        """(row, score, by) of the best ``topk``: ITM (or with ``ranking=
        'fused'`` ITM + ITC) over the ITC top ``rerank_k``, ranked above the
        rest (:func:`mvlt.models.utils.rank_candidates`)."""
        start = time.perf_counter()

        def scores(shortlist: np.ndarray) -> np.ndarray:
            return shortlist_scores(similarity, shortlist,
                                    itm_of(rows[shortlist[0]])[None], ranking)

        result = rank_candidates(
            None if rerank_k == 0 else scores,
            similarity,
            rerank_k,
            topk=topk)
        if rerank_k > 0:
            timing['itm'] = 1000 * (time.perf_counter() - start)
        return [(int(rows[j]), score, ranking if by == 'itm' else by)
                for j, score, by in result.hits()]

    def _photo_count(self, topk: int, by_product: bool) -> int:
        return self.photos.photo_hits_needed(topk) if by_product else topk

    def _cards(self, ranked: List[tuple], topk: int,
               by_product: bool) -> List[dict]:
        hits = [self._item(*hit) for hit in ranked]
        return group_by_product(hits, topk, self.photos) if by_product \
            else hits[:topk]

    def search_text(self,
                    query: str,
                    topk: int = 10,
                    rerank_k: int = 16,
                    by_product: bool = True) -> dict:
        """Products for a description.

        Args:
            query: The shopper's words.
            topk: Results returned.
            rerank_k: ITM re-ranks the ITC top k' (0: ITC order only). An
                exact-ITM index scores every item by ITM whatever k'.
            by_product: One result per product, its best photo, with the
                product's ``photos`` (:func:`group_by_product`); False:
                one result per photo.

        Returns:
            dict: ``query``, ``results``, ``timing``, and ``warning`` when
            every word piece of the query is [UNK]
            (:func:`~.query_check.judge_word_pieces`).

        Raises:
            SearchInputError: A refused query (empty, also of word pieces;
                too long) or setting.
        """
        query = check_query(query, self.max_query_chars)
        _check_counts(topk, rerank_k)
        error, warning = judge_word_pieces(
            self.inferencer.tokenizer, query)
        if error:
            raise SearchInputError(error)
        count = self._photo_count(topk, by_product)
        with self._lock:
            start = time.perf_counter()
            timing = dict(itc=0.0, itm=0.0)
            if not self.index.has_itc:
                images = self._gallery_images()
                ranked = self._exact(
                    self.inferencer.rank_images(query, images, count), start,
                    timing, self._live)
            else:
                embed = self.inferencer.embed_captions([query])
                rows, similarity = self._shortlist('images', embed,
                                                   max(count, rerank_k))
                timing['itc'] = 1000 * (time.perf_counter() - start)

                def itm_of(picked: np.ndarray) -> np.ndarray:
                    return self.inferencer.score(
                        self.index.gallery.read_many(picked),
                        [query] * len(picked))

                ranked = self._rank(rows, similarity, count, rerank_k,
                                    itm_of, timing, self.rerank_ranking)
            timing['total'] = 1000 * (time.perf_counter() - start)
        out = dict(
            query=query,
            results=self._cards(ranked, topk, by_product),
            timing=timing)
        if warning:
            out['warning'] = warning
        return out

    def search_image(self,
                     image: np.ndarray,
                     topk: int = 10,
                     rerank_k: int = 16,
                     by_product: bool = True) -> dict:
        """Captions that match an image, and the most similar products.

        Args:
            image: RGB uint8 (H, W, 3) (:func:`decode_image`).
            topk: Captions and products returned.
            rerank_k: ITM re-ranks the captions' ITC top k'.
            by_product: Similar products one per product (as
                :meth:`search_text`).

        Returns:
            dict: ``captions`` (``caption``, ``rows``, ``product_ids``,
            ``score``, ``by``), ``products`` (ITC image-image similarity;
            empty for an exact-ITM index) and ``timing``.
        """
        _check_counts(topk, rerank_k)
        with self._lock:
            start = time.perf_counter()
            timing = dict(itc=0.0, itm=0.0)
            products: List[dict] = []
            texts = None if self.index.has_itc else \
                sorted(self.index.items.live_captions())
            if not self.index.has_itc:
                ranked = self._exact(
                    self.inferencer.rank_captions(image, texts, topk), start,
                    timing)
            else:
                # Resized to the model's input once: the ITM pairs below
                # reuse it, so the cost does not grow with the upload's size.
                pixels = self.inferencer.load_images([image])
                embed = self.inferencer.embed_images(pixels)
                count = self._photo_count(topk, by_product)
                rows, similarity = self._shortlist('images', embed, count)
                products = self._cards(
                    self._rank(rows, similarity, count, 0, None, timing),
                    topk, by_product)
                picks, similarity = self._shortlist('captions', embed,
                                                    max(topk, rerank_k))
                timing['itc'] = 1000 * (time.perf_counter() - start)

                def itm_of(picked: np.ndarray) -> np.ndarray:
                    return self.inferencer.score(
                        pixels[[0] * len(picked)],  # torch or numpy
                        [self.index.items.caption(i) for i in picked])

                ranked = self._rank(picks, similarity, topk, rerank_k, itm_of,
                                    timing)
            timing['total'] = 1000 * (time.perf_counter() - start)
        return dict(
            captions=[self._caption_hit(texts, *hit) for hit in ranked],
            products=products,
            timing=timing)

    def _caption_hit(self, texts: Optional[Sequence[str]], index: int,
                     score: float, by: str) -> dict:
        """A ranked caption with its rows and products; ``index`` is a row
        of the caption table (ITC) or of ``texts`` (exact ITM)."""
        store = self.index.items
        caption = store.caption(index) if texts is None else texts[index]
        rows = store.caption_rows(
            index if texts is None else store.caption_id(caption))
        return dict(
            caption=caption,
            rows=rows,
            product_ids=sorted({store[r]['product_id']
                                for r in rows}),
            score=score,
            by=by)

    def more_like(self,
                  row: int,
                  topk: int = 10,
                  by_product: bool = True) -> dict:
        """Other products most similar to product row ``row`` (ITC cosine
        similarity of the image embeddings; rows of the same product are
        left out).

        Returns:
            dict: ``source`` (the item), ``results`` and ``timing``.

        Raises:
            SearchInputError: An unknown or removed row, or an exact-ITM
                index.
        """
        _check_counts(topk, 0)
        if not isinstance(row, (int, np.integer)) or \
                not 0 <= row < len(self):
            raise SearchInputError(
                f'No product row {row}: the index has rows 0 to '
                f'{len(self) - 1}.')
        if not self.index.items.is_live(row):
            raise SearchInputError(
                f'Product row {row} was removed from the index.')
        self._require_itc('"More like this"')
        product = self.index.items[row]['product_id']
        same = len(self.photos.of(product))
        count = self._photo_count(topk, by_product)
        with self._lock:
            start = time.perf_counter()
            embed = self.index.image_embeds[row][None]
            rows, similarity = self._shortlist('images', embed, count + same)
            keep = np.array(
                [self.index.items[r]['product_id'] != product for r in rows],
                bool)
            timing = dict(itm=0.0)
            ranked = self._rank(rows[keep], similarity[:, keep], count, 0,
                                None, timing)
            timing['itc'] = timing['total'] = 1000 * (
                time.perf_counter() - start)
        return dict(
            source=self.index.items[row],
            results=self._cards(ranked, topk, by_product),
            timing=timing)
