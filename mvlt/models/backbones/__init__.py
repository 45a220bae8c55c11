"""Backbones (registry: MODELS)."""
from .pvt_vl import PVTVL, VLFeatures
from .pvt_weights import PVTPretrainedInit, load_pvt_v1_weights

__all__ = ['PVTVL', 'VLFeatures', 'PVTPretrainedInit', 'load_pvt_v1_weights']
