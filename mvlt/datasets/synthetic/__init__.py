"""Synthetic data sets in the layouts of the real ones (offline demo, tests).

- :func:`write_synthetic_fashiongen`: Fashion-Gen HDF5 files of drawn
  garments whose captions state the visible attributes, and a vocabulary.
- :func:`write_synthetic_coco`: a tiny COCO 2014 / Karpathy layout.
- :func:`write_synthetic_fashioniq`: a FashionIQ of drawn garments.
- :func:`write_synthetic_catalogue`: a shop catalogue of drawn garments
  (several photos per product) as image-caption tar shards.
"""
from .coco import write_synthetic_coco
from .fashiongen import (FILE_TEMPLATE, Product, sample_products,
                         write_fashiongen_file, write_synthetic_fashiongen)
from .fashioniq import write_synthetic_fashioniq
from .garments import (COLOURS, GARMENT_TYPES, LENGTHS, PATTERNS, Garment,
                       all_garments, draw_garment)
from .shards import synthetic_catalogue_samples, write_synthetic_catalogue

__all__ = [
    'write_synthetic_fashiongen', 'write_fashiongen_file', 'sample_products',
    'Product', 'FILE_TEMPLATE', 'write_synthetic_coco',
    'write_synthetic_fashioniq', 'Garment', 'all_garments', 'draw_garment',
    'GARMENT_TYPES', 'LENGTHS', 'COLOURS', 'PATTERNS',
    'write_synthetic_catalogue', 'synthetic_catalogue_samples'
]
