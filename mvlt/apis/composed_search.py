"""Composed queries of a catalogue-search index: an image plus "what to
change" ("like this, but in red") -> products (text-guided image retrieval,
TGIR).

The query embedding is :meth:`MVLT.embed_composed` (the TGIR head on the
joint pass of the image and the text, through
:meth:`MVLTInferencer.embed_composed`); the products are the index's ITC
image embeddings, the gallery side the TGIR head was trained against, so an
index built with a TGIR-fine-tuned checkpoint answers text, image and
composed queries alike. Ranking is the index's: a faiss shortlist, exact
similarities and :func:`mvlt.models.utils.rank_order`.
"""
import time

import numpy as np


class ComposedSearchMixin:
    """``search_composed`` of :class:`~mvlt.apis.CatalogueSearch` (mixed
    into it; uses its index, inferencer, lock and ranking helpers)."""

    def search_composed(self,
                        image: np.ndarray,
                        text: str,
                        topk: int = 10) -> dict:
        """Products like ``image`` changed as ``text`` says.

        Args:
            image: RGB uint8 (H, W, 3) (:func:`decode_image`).
            text: What to change, e.g. "is red and has short sleeves"
                (checked as text queries are, word pieces included).
            topk: Products returned.

        Returns:
            dict: ``query``, ``results`` (``by='tgir'``: cosine similarity
            of the composed query and the product's image embedding),
            ``timing``, and ``warning`` as :meth:`search_text` gives it.

        Raises:
            SearchInputError: A refused text or setting, or an index whose
                model has no TGIR head.
        """
        # catalogue_search imports this module: its checks come at call time.
        from .catalogue_search import (SearchInputError, _check_counts,
                                       check_query)
        from .query_check import judge_word_pieces
        text = check_query(text, self.max_query_chars)
        _check_counts(topk, 0)
        error, warning = judge_word_pieces(
            self.inferencer.model.data_preprocessor.tokenizer, text)
        if error:
            raise SearchInputError(error)
        self._require_itc('A search by image and words')
        if 'tgir' not in self.inferencer.model.heads:
            raise SearchInputError(
                'A search by image and words needs a model fine-tuned for '
                'it (a TGIR head, e.g. configs/mvlt/tgir_fashioniq_finetune.'
                'py); this index was built with a model without one.')
        with self._lock:
            start = time.perf_counter()
            embed = self.inferencer.embed_composed([image], [text])
            rows, similarity = self._shortlist('images', embed, topk)
            timing = dict(itm=0.0)
            ranked = self._rank(rows, similarity, topk, 0, None, timing)
            timing['itc'] = timing['total'] = 1000 * (
                time.perf_counter() - start)
        out = dict(
            query=text,
            results=[
                dict(self._item(row, score, by), by='tgir')
                for row, score, by in ranked
            ],
            timing=timing)
        if warning:
            out['warning'] = warning
        return out
