"""Inference APIs: score image-caption pairs, rank galleries, reconstruct
masked images, search a product catalogue, get models by name and predict
categories zero-shot.

Names are imported on first use (PEP 562): the catalogue search, the
gallery and the search index import without torch when they serve ONNX
graphs (``backend='onnxruntime'``, docs/deployment.md); the inferencer and
the model zoo need torch.
"""
from mvlt.utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        'catalogue_search': (
            'CatalogueSearch', 'SearchInputError', 'check_query',
            'decode_image'),
        'gallery': ('Gallery', 'open_gallery', 'gallery_of_rows'),
        'inferencer': ('MVLTInferencer',),
        'search_index_layout': ('IndexMismatchError',),
        'search_index': ('SearchIndex',),
        'search_index_build': (
            'build_search_index', 'estimate_exact_itm_seconds'),
        'model_zoo': ('get_model', 'list_models', 'ModelInfo'),
    }, globals())
