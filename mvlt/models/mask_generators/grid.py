"""Grid masking: a regular lattice of mask units (paper figure 8, table 3c)."""
from typing import Optional

import torch

from mvlt.registry import MASK_GENERATORS
from .base import BaseMaskGenerator, uniform


@MASK_GENERATORS.register_module(name=['GridMask', 'grid'])
class GridMask(BaseMaskGenerator):
    """Mask a regular lattice of unit blocks.

    Units are grouped in square blocks of ``block_units`` x ``block_units``;
    block (i, j) is masked when ``(i + j + offset) % period`` is below
    ``round(mask_ratio * period)``. With the default ``period = 2`` and
    ``mask_ratio = 0.5`` this is a checkerboard of units. The lattice offset is
    drawn per image when ``random_offset`` is on (so both phases of the
    lattice are seen in training), else it is 0.

    Args:
        block_units (int): Side of one lattice cell in mask units.
        period (int): Lattice period along the diagonals, in blocks.
        random_offset (bool): Draw the lattice phase per image.
        **kwargs: ``mask_ratio``, ``patch_size``, ``unit_scale``,
            ``fill_value`` of :class:`BaseMaskGenerator`.
    """

    def __init__(self,
                 block_units: int = 1,
                 period: int = 2,
                 random_offset: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if block_units < 1 or period < 1:
            raise ValueError('GridMask: block_units and period must be '
                             f'positive, got {block_units} and {period}.')
        self.block_units = int(block_units)
        self.period = int(period)
        self.random_offset = bool(random_offset)

    def generate_units(self, batch_size: int, grid_height: int,
                       grid_width: int, device: torch.device,
                       generator: Optional[torch.Generator]) -> torch.Tensor:
        rows = torch.arange(grid_height, device=device) // self.block_units
        cols = torch.arange(grid_width, device=device) // self.block_units
        phase = rows[:, None] + cols[None, :]
        if self.random_offset:
            offset = (uniform(
                (batch_size, ), device, generator) * self.period).long()
        else:
            offset = torch.zeros(batch_size, dtype=torch.long, device=device)
        masked_phases = int(round(self.mask_ratio * self.period))
        return ((phase[None] + offset[:, None, None]) %
                self.period) < masked_phases
