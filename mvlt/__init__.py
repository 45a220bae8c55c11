"""mvlt: MVLT, the Masked Vision-Language Transformer, on MMEngine."""
from .version import __version__

__all__ = ['__version__']
