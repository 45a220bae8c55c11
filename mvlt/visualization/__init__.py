"""Visualisation (registries: VISUALIZERS, VISBACKENDS)."""
from .figures import (denormalize, masked_view, reconstruction_figure,
                      retrieval_figure, text_panel, to_rgb_uint8)
from .image_writer import encode_rgb_image, shrink_to_fit, write_rgb_image

__all__ = [
    'denormalize', 'masked_view', 'reconstruction_figure', 'retrieval_figure',
    'text_panel', 'to_rgb_uint8', 'shrink_to_fit', 'write_rgb_image',
    'encode_rgb_image'
]
