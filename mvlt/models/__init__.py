"""Models of mvlt: backbone, necks, heads, mask generators, the MVLT model."""
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .mask_generators import *  # noqa: F401,F403
from .mvlt import MVLT
from .necks import *  # noqa: F401,F403

__all__ = ['MVLT']
