"""The galleries a search index's rows come from: the one it was built from
and those that updates added products from
(:mod:`mvlt.apis.search_index_update`).

Row ``r`` of the index is row ``source_row`` of source ``source`` (0: the
built gallery, ``k``: the ``k``-th gallery in ``meta['additions']``), as the
item table records (:class:`~mvlt.apis.item_store.ItemStore`). ITM re-ranking
and exact-ITM scoring read the images from there; every source's content
hash is checked when the index is opened, as the built gallery's always was.
"""
from typing import Callable, List, Optional, Sequence

import numpy as np

from .gallery import Gallery, gallery_of_rows, open_gallery
from .search_index_layout import IndexMismatchError


class SourcesGallery:
    """The images of an updated index's rows, read from their galleries.

    Args:
        parts: The galleries, source 0 first.
        sources: ``rows -> [(source, source_row), ...]`` (the item table).
        num_rows: The index's rows.
    """

    def __init__(self, parts: Sequence[Gallery],
                 sources: Callable[[Sequence[int]], List[tuple]],
                 num_rows: int) -> None:
        self.parts, self._sources, self._num = list(parts), sources, num_rows

    def __len__(self) -> int:
        return self._num

    def read_many(self, rows: Sequence[int]) -> List[np.ndarray]:
        """RGB uint8 images of index rows, each from its gallery (rows of
        one gallery read together)."""
        where = self._sources([int(r) for r in rows])
        out: List[Optional[np.ndarray]] = [None] * len(where)
        for source, part in enumerate(self.parts):
            picked = [i for i, (s, _) in enumerate(where) if s == source]
            if picked:
                images = part.read_many([where[i][1] for i in picked])
                for i, image in zip(picked, images):
                    out[i] = image
        return out

    def read(self, row: int) -> np.ndarray:
        """The image of one index row."""
        return self.read_many([row])[0]


def open_sources(meta: dict,
                 verify: bool,
                 mismatch: Callable[[str], Exception],
                 source_items: Optional[Callable[[int], list]] = None
                 ) -> List[Gallery]:
    """Open and check every gallery an index was built or updated from.

    Args:
        meta: The index's ``meta.json``.
        verify: Compare each gallery's content hash with the recorded one.
        mismatch: Makes the error for a changed gallery (the message gets
            the rebuild command).
        source_items: For the torch-free ONNX backend: source -> its rows as
            recorded in the item table (:func:`gallery_of_rows`); None: the
            galleries are read from their sources (:func:`open_gallery`).

    Raises:
        IndexMismatchError: A gallery that changed since (its row count or
            content hash differs).
    """
    additions = meta.get('additions') or []
    specs = [dict(meta['gallery'],
                  rows=meta['num_items'] - sum(a['rows'] for a in additions))
             ] + additions
    parts = []
    for source, spec in enumerate(specs):
        if source_items is not None:
            try:
                gallery = gallery_of_rows(spec, source_items(source))
            except ValueError as err:
                raise IndexMismatchError(str(err)) from None
        else:
            gallery = open_gallery(
                f"{spec['kind']}:{spec['path']}",
                spec.get('image_root'),
                exclude=spec.get('exclude', ()))
        what = 'the gallery' if source == 0 else 'the added gallery'
        if len(gallery) != spec['rows']:
            raise mismatch(f'{what} {spec["path"]} now has {len(gallery)} '
                           f'rows, the index {spec["rows"]}.')
        if verify and gallery.content_hash() != spec['sha256']:
            raise mismatch(f'{what} {spec["path"]} changed since the index '
                           'was built (its content hash differs).')
        parts.append(gallery)
    return parts
