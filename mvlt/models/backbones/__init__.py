"""Backbones (registry: MODELS)."""
from .pvt_vl import PVTVL, UnimodalFeatures, VLFeatures
from .pvt_weights import PVTPretrainedInit, load_pvt_v1_weights

__all__ = [
    'PVTVL', 'UnimodalFeatures', 'VLFeatures', 'PVTPretrainedInit',
    'load_pvt_v1_weights'
]
