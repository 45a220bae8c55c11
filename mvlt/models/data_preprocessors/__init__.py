"""Data preprocessors (registry: MODELS)."""
from .mvlt_preprocessor import MVLTDataPreprocessor

__all__ = ['MVLTDataPreprocessor']
