"""Deployment: ONNX export of the ITC towers and the ITM matcher, and their
torch-free serving with ONNX Runtime (docs/deployment.md).

Names are imported on first use (PEP 562): the model's data preprocessor
imports :mod:`mvlt.deploy.preprocessing` alone. Everything exported here is
torch-free; the exporter, :mod:`mvlt.deploy.onnx_export`, needs torch.
"""
from mvlt.utils.lazy import lazy_exports

#: Public name -> the module of this package that defines it.
_EXPORTS = dict(
    GRAPH_FILES='manifest',
    MANIFEST_FILE='manifest',
    ManifestMismatchError='manifest',
    check_manifest='manifest',
    read_manifest='manifest',
    OnnxInferencer='onnx_inferencer',
    foreground_box='preprocessing',
    normalize_images='preprocessing',
    prepare_image='preprocessing')

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
