"""Results by product: a shop shows products, not photos.

A catalogue has several photos per product (Fashion-Gen: 1-6 views of each
product). Photo-level ranking can fill the first cards with photos of one
product; :func:`group_by_product` keeps each product's best-ranked photo as
its card, in the order of those best photos, and lists the product's other
photos on the card (as shop search and clip-retrieval's de-duplication by
id do).
"""
from typing import Dict, List, Sequence


class ProductPhotos:
    """Rows of every product of an item table, looked up when needed.

    Args:
        items: The index's :class:`~mvlt.apis.item_store.ItemStore` (its
            ``product_rows`` and ``max_photos``), or for a small table a
            sequence of dicts with ``product_id`` (row order).

    Attributes:
        max_photos (int): The most photos of one product (how many photo
            hits can be needed per product card).
    """

    def __init__(self, items) -> None:
        if hasattr(items, 'product_rows'):
            self._rows_of = items.product_rows
            self.max_photos = items.max_photos
            return
        rows: Dict[str, List[int]] = {}
        for row, item in enumerate(items):
            rows.setdefault(item['product_id'], []).append(row)
        self._rows_of = rows.__getitem__
        self.max_photos = max((len(r) for r in rows.values()), default=1)

    def of(self, product_id: str) -> List[int]:
        """The product's rows (served photos), ascending."""
        return self._rows_of(product_id)

    def photo_hits_needed(self, topk: int, cap: int = 1024) -> int:
        """Photo hits that always hold ``topk`` distinct products (at most
        ``cap``, which bounds a query's work whatever the catalogue)."""
        return min(cap, topk * self.max_photos)


def group_by_product(hits: Sequence[dict], topk: int,
                     photos: ProductPhotos) -> List[dict]:
    """The first ``topk`` products of a ranked photo list.

    Args:
        hits: Ranked results (best first), each with ``row`` and
            ``product_id``.
        topk: Products returned.
        photos: The index's :class:`ProductPhotos`.

    Returns:
        list[dict]: Per product its best hit, with ``photos`` (every row of
        the product, the shown one first) and ``matched_photos`` (how many
        of its photos were among ``hits``), best product first.
    """
    cards: Dict[str, dict] = {}
    for hit in hits:
        product = hit['product_id']
        if product in cards:
            cards[product]['matched_photos'] += 1
            continue
        if len(cards) == topk:
            continue
        others = [r for r in photos.of(product) if r != hit['row']]
        cards[product] = dict(
            hit, photos=[hit['row']] + others, matched_photos=1)
    return list(cards.values())


def photos_html(card: dict, shown: int = 4) -> str:
    """Small thumbnails of a product card's other photos (HTML; empty when
    it has none): how the page makes them reachable from the card."""
    thumbs = ''.join(
        f'<img class="mvlt-photo" src="/thumbs/{row:06d}.jpg" '
        f'data-row="{row}" alt="photo {row}" '
        'style="width:34px;height:34px;margin-right:2px">'
        for row in card.get('photos', [])[1:shown + 1])
    return f'<div class="mvlt-photos">{thumbs}</div>' if thumbs else ''
