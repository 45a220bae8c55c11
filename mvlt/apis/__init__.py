"""Inference APIs: score image-caption pairs, rank galleries, reconstruct
masked images."""
from .inferencer import MVLTInferencer

__all__ = ['MVLTInferencer']
