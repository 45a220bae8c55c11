"""Base class of the image-mask strategies of masked image reconstruction."""
import math
from typing import Optional, Union

import torch

DeviceType = Union[str, torch.device, None]


class BaseMaskGenerator:
    """Draws boolean pixel masks for a whole batch in one call.

    Masks are drawn on a grid of square *mask units* of ``unit_size`` pixels
    (``patch_size * unit_scale``: the paper's ``alpha * P``) and expanded to
    pixels, so that every masked region is aligned to the unit grid. When the
    image side is not a multiple of the unit, the last row / column of units
    is cropped.

    Subclasses implement :meth:`generate_units`.

    Args:
        mask_ratio (float): Target fraction of masked units (the paper's
            ``r_v``), in [0, 1].
        patch_size (int): Stage-1 patch size ``P`` in pixels.
        unit_scale (int): Mask-unit side in patches (the paper's ``alpha``).
        fill_value (float): Value written into masked pixels by
            :meth:`apply` (the paper's ``[ZERO] = 1e-6``).
    """

    def __init__(self,
                 mask_ratio: float = 0.5,
                 patch_size: int = 4,
                 unit_scale: int = 4,
                 fill_value: float = 1e-6) -> None:
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f'{type(self).__name__}: mask_ratio must be in '
                             f'[0, 1], got {mask_ratio}.')
        if patch_size < 1 or unit_scale < 1:
            raise ValueError(
                f'{type(self).__name__}: patch_size and unit_scale must be '
                f'positive integers, got {patch_size} and {unit_scale}.')
        self.mask_ratio = float(mask_ratio)
        self.patch_size = int(patch_size)
        self.unit_scale = int(unit_scale)
        self.fill_value = float(fill_value)

    @property
    def unit_size(self) -> int:
        """Side of one mask unit in pixels (``alpha * P``)."""
        return self.patch_size * self.unit_scale

    def grid_shape(self, height: int, width: int) -> tuple:
        """Number of mask units along (height, width) for an image size."""
        return (math.ceil(height / self.unit_size),
                math.ceil(width / self.unit_size))

    def generate_units(self, batch_size: int, grid_height: int,
                       grid_width: int, device: torch.device,
                       generator: Optional[torch.Generator]) -> torch.Tensor:
        """Return a bool tensor (B, grid_height, grid_width); True = masked."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement generate_units().')

    def __call__(self,
                 batch_size: int,
                 height: int,
                 width: int,
                 device: DeviceType = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw masks for a batch.

        Args:
            batch_size (int): Number of images B.
            height, width (int): Image size in pixels.
            device: Device of the result; defaults to the generator's device,
                or CPU.
            generator (torch.Generator, optional): Source of randomness. The
                same generator state gives the same masks.

        Returns:
            torch.Tensor: bool (B, height, width), True = masked pixel.
        """
        if device is None:
            device = generator.device if generator is not None else 'cpu'
        device = torch.device(device)
        grid_h, grid_w = self.grid_shape(height, width)
        units = self.generate_units(batch_size, grid_h, grid_w, device,
                                    generator)
        return self.expand_units(units, height, width)

    def expand_units(self, units: torch.Tensor, height: int,
                     width: int) -> torch.Tensor:
        """Expand a unit mask (B, h, w) to pixels (B, height, width)."""
        pixels = units.repeat_interleave(self.unit_size, dim=1)
        pixels = pixels.repeat_interleave(self.unit_size, dim=2)
        return pixels[:, :height, :width].contiguous()

    def apply(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fill masked pixels of images (B, C, H, W) with ``fill_value``."""
        return images.masked_fill(mask.unsqueeze(1), self.fill_value)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mask_ratio={self.mask_ratio}, '
                f'unit_size={self.unit_size}, fill_value={self.fill_value})')


def uniform(shape: tuple, device: torch.device,
            generator: Optional[torch.Generator]) -> torch.Tensor:
    """Uniform [0, 1) samples of ``shape`` on ``device`` from ``generator``."""
    return torch.rand(shape, device=device, generator=generator)
