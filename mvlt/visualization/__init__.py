"""Visualisation (registries: VISUALIZERS, VISBACKENDS)."""
from .figures import (denormalize, masked_view, reconstruction_figure,
                      retrieval_figure, text_panel, to_rgb_uint8)

__all__ = [
    'denormalize', 'masked_view', 'reconstruction_figure', 'retrieval_figure',
    'text_panel', 'to_rgb_uint8'
]
