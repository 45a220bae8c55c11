"""Deployment: ONNX export of the ITC towers and the ITM matcher, and their
torch-free serving with ONNX Runtime (docs/deployment.md).

Everything imported here is torch-free; the exporter,
:mod:`mvlt.deploy.onnx_export`, needs torch and is imported on its own.
"""
from .manifest import (GRAPH_FILES, MANIFEST_FILE, ManifestMismatchError,
                       check_manifest, read_manifest)
from .onnx_inferencer import OnnxInferencer
from .preprocessing import foreground_box, normalize_images, prepare_image

__all__ = [
    'GRAPH_FILES', 'MANIFEST_FILE', 'ManifestMismatchError', 'check_manifest',
    'read_manifest', 'OnnxInferencer', 'foreground_box', 'normalize_images',
    'prepare_image'
]
