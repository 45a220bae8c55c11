"""Deployment: ONNX export of the ITC towers and the ITM matcher, and their
torch-free serving with ONNX Runtime (docs/deployment.md).

Names are imported on first use (PEP 562): the model's data preprocessor
imports :mod:`mvlt.deploy.preprocessing` alone. Everything exported here is
torch-free; the exporter, :mod:`mvlt.deploy.onnx_export`, needs torch.
"""
from mvlt.utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        'manifest': (
            'GRAPH_FILES', 'MANIFEST_FILE', 'ManifestMismatchError',
            'check_manifest', 'read_manifest'),
        'onnx_inferencer': ('OnnxInferencer',),
        'preprocessing': (
            'foreground_box', 'normalize_images', 'prepare_image'),
    }, globals())
