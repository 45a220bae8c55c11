"""Inference APIs: score image-caption pairs, rank galleries, reconstruct
masked images, search a product catalogue, get models by name and predict
categories zero-shot.

Names are imported on first use (PEP 562): the catalogue search, the
gallery and the search index import without torch when they serve ONNX
graphs (``backend='onnxruntime'``, docs/deployment.md); the inferencer and
the model zoo need torch.
"""
from mvlt.utils.lazy import lazy_exports

#: Public name -> the module of this package that defines it.
_EXPORTS = dict(
    CatalogueSearch='catalogue_search',
    SearchInputError='catalogue_search',
    check_query='catalogue_search',
    decode_image='catalogue_search',
    Gallery='gallery',
    open_gallery='gallery',
    gallery_of_rows='gallery',
    MVLTInferencer='inferencer',
    IndexMismatchError='search_index_layout',
    SearchIndex='search_index',
    build_search_index='search_index_build',
    estimate_exact_itm_seconds='search_index_build',
    get_model='model_zoo',
    list_models='model_zoo',
    ModelInfo='model_zoo')

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
