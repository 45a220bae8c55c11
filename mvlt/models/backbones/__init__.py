"""Backbones (registry: MODELS)."""
from .pvt_vl import PVTVL, VLFeatures

__all__ = ['PVTVL', 'VLFeatures']
