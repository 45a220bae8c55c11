"""Gallery ranking for :class:`mvlt.apis.MVLTInferencer`: rank images for a
caption or captions for an image, by ITM, optionally on the ITC top k."""
import hashlib
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from mvlt.models.utils import itc_similarity, rank_candidates

ImageInput = Union[str, np.ndarray]


def _key_of(items: Sequence) -> str:
    """Cache key of a gallery: its paths / captions, or its pixels."""
    digest = hashlib.sha1()
    for item in items:
        digest.update(
            item.encode('utf-8') if isinstance(item, str) else np.
            ascontiguousarray(item).tobytes())
        digest.update(b'\0')
    return digest.hexdigest()


class GalleryRankingMixin:
    """``rank_images`` / ``rank_captions``: ITM on the whole gallery, or ITM
    re-ranking of the ITC top ``rerank_k`` (galleries decoded and embedded
    once, cached in ``_galleries`` by content). Mixed into
    :class:`MVLTInferencer` (its ``load_images``, ``tokenize_captions``,
    ``embed_captions``, ``_embed_pixels``, ``_itm``, ``_require``,
    ``has_itc`` and ``_galleries``).
    """

    def _image_gallery(self, images: Sequence[ImageInput]) -> dict:
        key = 'images:' + _key_of(images)
        if key not in self._galleries:
            pixels = self.load_images(images)
            embeds = self._embed_pixels(pixels) if self.has_itc else None
            self._galleries[key] = dict(pixels=pixels, embeds=embeds)
        return self._galleries[key]

    def _caption_gallery(self, captions: Sequence[str]) -> dict:
        key = 'captions:' + _key_of(captions)
        if key not in self._galleries:
            ids, mask = self.tokenize_captions(captions)
            embeds = self.embed_captions(captions) if self.has_itc else None
            self._galleries[key] = dict(ids=ids, mask=mask, embeds=embeds)
        return self._galleries[key]

    def _rank(self, size: int, query_embed: Callable[[], np.ndarray],
              gallery_embeds: Optional[np.ndarray],
              itm_of: Callable[[np.ndarray], np.ndarray], topk: Optional[int],
              rerank_k: Optional[int]) -> List[dict]:
        """Rank ``size`` gallery items: ITM on all of them, or ITM on the ITC
        top ``rerank_k`` ranked above the rest in ITC order
        (:func:`mvlt.models.utils.rank_candidates`)."""
        if rerank_k is None or rerank_k >= size:
            ranking = rank_candidates(
                lambda columns: itm_of(columns[0])[None],
                topk=topk,
                shape=(1, size))
        else:
            if gallery_embeds is None:
                raise KeyError('rerank_k needs the ITC head (model.heads.itc)'
                               ' in the config and the checkpoint.')
            ranking = rank_candidates(
                lambda shortlist: itm_of(shortlist[0])[None],
                itc_similarity(query_embed(), gallery_embeds),
                rerank_k,
                topk=topk)
        return [
            dict(index=index, score=score, by=by)
            for index, score, by in ranking.hits()
        ]

    def rank_images(self,
                    caption: str,
                    images: Sequence[ImageInput],
                    topk: Optional[int] = 5,
                    rerank_k: Optional[int] = None) -> List[dict]:
        """Rank a gallery of images for a caption.

        Args:
            caption: The query.
            images: The gallery (decoded, and embedded when the model has an
                ITC head, once per distinct gallery).
            topk: Results returned (None = the whole gallery).
            rerank_k: Re-rank only the ITC top k with ITM
                (:func:`mvlt.models.utils.rank_candidates`);
                None = ITM on the whole gallery.

        Returns:
            list[dict]: ``index`` (into ``images``), ``score`` and ``by``
            (``'itm'``: ITM probability; ``'itc'``: ITC similarity of an
            item below the re-ranked ones), best first.
        """
        self._require('itm')
        gallery = self._image_gallery(images)
        ids, mask = self.tokenize_captions([caption])
        pixels = gallery['pixels']

        def itm_of(index: np.ndarray) -> np.ndarray:
            count = len(index)
            return self._itm(pixels[index], ids.expand(count, -1),
                             mask.expand(count, -1))

        return self._rank(
            len(pixels), lambda: self.embed_captions([caption]),
            gallery['embeds'], itm_of, topk, rerank_k)

    def rank_captions(self,
                      image: ImageInput,
                      captions: Sequence[str],
                      topk: Optional[int] = 5,
                      rerank_k: Optional[int] = None) -> List[dict]:
        """Rank a gallery of captions for an image (see
        :meth:`rank_images`)."""
        self._require('itm')
        gallery = self._caption_gallery(captions)
        pixels = self.load_images([image])

        def itm_of(index: np.ndarray) -> np.ndarray:
            count = len(index)
            return self._itm(
                pixels.expand(count, -1, -1, -1), gallery['ids'][index],
                gallery['mask'][index])

        return self._rank(
            len(gallery['ids']), lambda: self._embed_pixels(pixels),
            gallery['embeds'], itm_of, topk, rerank_k)
