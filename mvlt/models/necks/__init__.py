"""Necks (registry: MODELS)."""
from .cls_pooler import CLSPooler, TokenProjector

__all__ = ['CLSPooler', 'TokenProjector']
