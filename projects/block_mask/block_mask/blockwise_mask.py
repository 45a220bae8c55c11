"""BEiT-style block-wise masking as an MVLT mask strategy (plug-in)."""
import math
from typing import Optional

import torch

from mvlt.models.mask_generators import BaseMaskGenerator
from mvlt.registry import MASK_GENERATORS


@MASK_GENERATORS.register_module(name=['BlockwiseMask', 'blockwise'])
class BlockwiseMask(BaseMaskGenerator):
    """Mask random rectangles of mask units until r_v of them are masked.

    The block-wise masking of BEiT (Bao et al., 2022) on MVLT's mask-unit
    grid: each round draws, for every image of the batch at once, a rectangle
    whose area is uniform in [``min_block_units``, the units still to mask]
    (capped by ``max_block_units``) and whose aspect ratio is log-uniform in
    [``min_aspect``, 1 / ``min_aspect``], at a uniform position. The rectangle
    is kept when it masks at least one new unit and does not overshoot the
    target ``round(mask_ratio * Q)``. An image stops after the target is
    reached or ``max_attempts`` rectangles in a row were rejected, so it ends
    with at most the target (usually within a few units of it).

    Args:
        mask_ratio (float): Target fraction r_v of masked units.
        patch_size (int): Stage-1 patch size P in pixels.
        unit_scale (int): Mask-unit side in patches (alpha); the default
            16 px units give BEiT's grid size (16 x 16 at 256 px).
        fill_value (float): Value of masked pixels.
        min_block_units (int): Smallest rectangle area in units (BEiT: 16).
        max_block_units (int, optional): Largest rectangle area in units;
            None: no cap beyond the target.
        min_aspect (float): Smallest aspect ratio (height / width); the
            largest is its inverse.
        max_attempts (int): Rejected rectangles in a row after which an image
            stops (BEiT: 10).
    """

    def __init__(self,
                 mask_ratio: float = 0.5,
                 patch_size: int = 4,
                 unit_scale: int = 4,
                 fill_value: float = 1e-6,
                 min_block_units: int = 16,
                 max_block_units: Optional[int] = None,
                 min_aspect: float = 0.3,
                 max_attempts: int = 10) -> None:
        super().__init__(mask_ratio, patch_size, unit_scale, fill_value)
        if min_block_units < 1:
            raise ValueError('BlockwiseMask: min_block_units must be >= 1, '
                             f'got {min_block_units}.')
        if max_block_units is not None and max_block_units < min_block_units:
            raise ValueError(
                f'BlockwiseMask: max_block_units ({max_block_units}) is '
                f'smaller than min_block_units ({min_block_units}).')
        if not 0.0 < min_aspect <= 1.0:
            raise ValueError('BlockwiseMask: min_aspect must be in (0, 1], '
                             f'got {min_aspect}.')
        self.min_block_units = int(min_block_units)
        self.max_block_units = max_block_units
        self.log_aspect = (math.log(min_aspect), -math.log(min_aspect))
        self.max_attempts = int(max_attempts)

    def generate_units(self, batch_size: int, grid_height: int,
                       grid_width: int, device: torch.device,
                       generator: Optional[torch.Generator]) -> torch.Tensor:
        num_units = grid_height * grid_width
        target = int(round(self.mask_ratio * num_units))
        cap = self.max_block_units or num_units
        mask = torch.zeros(
            batch_size,
            grid_height,
            grid_width,
            dtype=torch.bool,
            device=device)
        count = torch.zeros(batch_size, dtype=torch.long, device=device)
        failures = torch.zeros_like(count)
        rows = torch.arange(grid_height, device=device).view(1, -1, 1)
        cols = torch.arange(grid_width, device=device).view(1, 1, -1)
        # Each accepted rectangle masks >= 1 new unit and each image stops
        # after max_attempts rejections in a row, which bounds the rounds.
        for _ in range((target + 1) * (self.max_attempts + 1)):
            budget = torch.clamp(target - count, max=cap)
            active = (budget >= self.min_block_units) & \
                (failures < self.max_attempts)
            if not bool(active.any()):
                break
            draws = torch.rand(
                batch_size, 4, device=device, generator=generator)
            area = self.min_block_units + draws[:, 0] * (
                budget - self.min_block_units).clamp_min(0)
            aspect = torch.exp(self.log_aspect[0] + draws[:, 1] *
                               (self.log_aspect[1] - self.log_aspect[0]))
            height = torch.sqrt(area * aspect).round().long().clamp_min(1)
            width = torch.sqrt(area / aspect).round().long().clamp_min(1)
            fits = (height <= grid_height) & (width <= grid_width)
            top = (draws[:, 2] *
                   (grid_height - height + 1).clamp_min(1)).long()
            left = (draws[:, 3] * (grid_width - width + 1).clamp_min(1)).long()
            rect = (rows >= top.view(-1, 1, 1)) & \
                (rows < (top + height).view(-1, 1, 1)) & \
                (cols >= left.view(-1, 1, 1)) & \
                (cols < (left + width).view(-1, 1, 1))
            new = (rect & ~mask).flatten(1).sum(1)
            accept = active & fits & (new > 0) & (new <= budget)
            mask |= rect & accept.view(-1, 1, 1)
            count += torch.where(accept, new, torch.zeros_like(new))
            failures = torch.where(accept, torch.zeros_like(failures),
                                   failures + active.long())
        return mask
