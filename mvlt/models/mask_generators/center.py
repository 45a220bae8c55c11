"""Center masking: one central block (paper figure 8, table 3c)."""
import math
from typing import Optional

import torch

from mvlt.registry import MASK_GENERATORS
from .base import BaseMaskGenerator, uniform


@MASK_GENERATORS.register_module(name=['CenterMask', 'center'])
class CenterMask(BaseMaskGenerator):
    """Mask one block of units in the middle of the image.

    The block is as close to square as the unit grid allows and covers
    ``mask_ratio`` of the units (side ``round(sqrt(mask_ratio) * grid)``).
    ``max_shift_units`` lets the block move by up to that many units from the
    centre, drawn per image (0 = always the exact centre). The other
    arguments are those of :class:`BaseMaskGenerator`.
    """

    def __init__(self, max_shift_units: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_shift_units = int(max_shift_units)

    def generate_units(self, batch_size: int, grid_height: int,
                       grid_width: int, device: torch.device,
                       generator: Optional[torch.Generator]) -> torch.Tensor:
        side_scale = math.sqrt(self.mask_ratio)
        block_h = min(grid_height, int(round(side_scale * grid_height)))
        block_w = min(grid_width, int(round(side_scale * grid_width)))
        top = torch.full((batch_size, ), (grid_height - block_h) // 2,
                         device=device)
        left = torch.full((batch_size, ), (grid_width - block_w) // 2,
                          device=device)
        if self.max_shift_units > 0:
            span = 2 * self.max_shift_units + 1
            shifts = (uniform((2, batch_size), device, generator) *
                      span).long() - self.max_shift_units
            top = (top + shifts[0]).clamp(0, grid_height - block_h)
            left = (left + shifts[1]).clamp(0, grid_width - block_w)
        rows = torch.arange(grid_height, device=device)[None, :, None]
        cols = torch.arange(grid_width, device=device)[None, None, :]
        top, left = top[:, None, None], left[:, None, None]
        return ((rows >= top) & (rows < top + block_h) & (cols >= left) &
                (cols < left + block_w))
