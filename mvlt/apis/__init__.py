"""Inference APIs: score image-caption pairs, rank galleries, reconstruct
masked images, and search a product catalogue."""
from .catalogue_search import (CatalogueSearch, SearchInputError, check_query,
                               decode_image)
from .gallery import Gallery, open_gallery
from .inferencer import MVLTInferencer
from .search_index import (IndexMismatchError, SearchIndex, build_search_index,
                           estimate_exact_itm_seconds)

__all__ = [
    'MVLTInferencer', 'CatalogueSearch', 'SearchInputError', 'check_query',
    'decode_image', 'Gallery', 'open_gallery', 'IndexMismatchError',
    'SearchIndex', 'build_search_index', 'estimate_exact_itm_seconds'
]
