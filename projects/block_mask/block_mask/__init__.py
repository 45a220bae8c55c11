"""Block-wise (BEiT-style) image masking for MVLT, as a plug-in project."""
from .blockwise_mask import BlockwiseMask

__all__ = ['BlockwiseMask']
