"""Random-grid masking: the paper's default strategy (figure 4b)."""
from typing import Optional

import torch

from mvlt.registry import MASK_GENERATORS
from .base import BaseMaskGenerator, uniform


@MASK_GENERATORS.register_module(name=['RandomGridMask', 'random-grid'])
class RandomGridMask(BaseMaskGenerator):
    """Mask exactly ``round(mask_ratio * Q)`` of the Q mask units per image.

    The units are chosen uniformly at random without replacement, so every
    image of the batch has the same number of masked units (defaults: 16 px
    units, Q = 256 at 256 px, 128 of them masked).
    """

    def generate_units(self, batch_size: int, grid_height: int,
                       grid_width: int, device: torch.device,
                       generator: Optional[torch.Generator]) -> torch.Tensor:
        num_units = grid_height * grid_width
        num_masked = int(round(self.mask_ratio * num_units))
        scores = uniform((batch_size, num_units), device, generator)
        units = torch.zeros(
            batch_size, num_units, dtype=torch.bool, device=device)
        if num_masked > 0:
            chosen = scores.topk(num_masked, dim=1).indices
            units.scatter_(1, chosen, True)
        return units.view(batch_size, grid_height, grid_width)
