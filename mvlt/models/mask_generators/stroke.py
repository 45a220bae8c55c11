"""Free-form brush-stroke masking (paper figure 8, table 3c)."""
import math
from typing import Optional

import torch

from mvlt.registry import MASK_GENERATORS
from .base import BaseMaskGenerator, uniform


@MASK_GENERATORS.register_module(name=['StrokeMask', 'stroke'])
class StrokeMask(BaseMaskGenerator):
    """Mask free-form brush strokes, drawn for the whole batch at once.

    Each image gets up to ``max_strokes`` strokes; a stroke is a polyline of
    ``num_vertices`` points that starts at a uniform position and turns by a
    random angle at each vertex, with segment length in
    ``segment_length`` (fraction of the image side) and brush width in
    ``brush_width`` (fraction of the image side). Strokes are added in order
    until at least ``mask_ratio`` of the units is covered, so the masked
    fraction is close to (and at least) the target whenever ``max_strokes``
    suffice. Strokes are rasterised on the unit grid (default 4 px units:
    ``unit_scale = 1``) by the distance of each unit centre to the segments.
    The other arguments are those of :class:`BaseMaskGenerator`.
    """

    def __init__(self,
                 unit_scale: int = 1,
                 max_strokes: int = 24,
                 num_vertices: int = 5,
                 segment_length: tuple = (0.1, 0.3),
                 brush_width: tuple = (0.05, 0.12),
                 **kwargs) -> None:
        super().__init__(unit_scale=unit_scale, **kwargs)
        if max_strokes < 1 or num_vertices < 2:
            raise ValueError('StrokeMask: need max_strokes >= 1 and '
                             f'num_vertices >= 2, got {max_strokes}, '
                             f'{num_vertices}.')
        self.max_strokes = int(max_strokes)
        self.num_vertices = int(num_vertices)
        self.segment_length = tuple(float(x) for x in segment_length)
        self.brush_width = tuple(float(x) for x in brush_width)

    def generate_units(self, batch_size: int, grid_height: int,
                       grid_width: int, device: torch.device,
                       generator: Optional[torch.Generator]) -> torch.Tensor:
        num_strokes, num_segments = self.max_strokes, self.num_vertices - 1
        side = float(max(grid_height, grid_width))
        shape = (batch_size, num_strokes)
        # Polyline vertices in unit coordinates (x: width, y: height).
        start = uniform(shape + (2, ), device, generator) * torch.tensor(
            [grid_width, grid_height], device=device, dtype=torch.float32)
        angle0 = uniform(shape + (1, ), device, generator) * 2 * math.pi
        turns = (uniform(shape + (num_segments, ), device, generator) - 0.5) \
            * math.pi
        angles = angle0 + turns.cumsum(dim=-1)
        low, high = self.segment_length
        lengths = (
            low +
            (high - low) * uniform(shape +
                                   (num_segments, ), device, generator)) * side
        steps = torch.stack([angles.cos(), angles.sin()], dim=-1) \
            * lengths[..., None]
        vertices = torch.cat([start[:, :, None], steps], dim=2).cumsum(dim=2)
        seg_start, seg_end = vertices[:, :, :-1], vertices[:, :, 1:]
        low, high = self.brush_width
        radius = (low + (high - low) * uniform(shape, device, generator)) \
            * side / 2

        ys = torch.arange(grid_height, device=device, dtype=torch.float32)
        xs = torch.arange(grid_width, device=device, dtype=torch.float32)
        centres = torch.stack(
            torch.meshgrid(xs + 0.5, ys + 0.5, indexing='xy'),
            dim=-1).view(-1, 2)  # (h*w, 2) as (x, y)
        # Squared distance of every unit centre to every segment.
        direction = seg_end - seg_start  # (B, S, G, 2)
        seg_len2 = (direction * direction).sum(-1).clamp_min(1e-12)
        rel = centres[None, None, None] - seg_start[..., None, :]
        t = ((rel * direction[..., None, :]).sum(-1) /
             seg_len2[..., None]).clamp(0, 1)  # (B, S, G, h*w)
        nearest = seg_start[..., None, :] + t[..., None] * \
            direction[..., None, :]
        dist2 = ((centres - nearest)**2).sum(-1).amin(dim=2)  # (B, S, h*w)
        strokes = dist2 <= (radius**2)[..., None]

        # Union of the first k strokes; keep the smallest k reaching the ratio.
        union = strokes.to(torch.uint8).cummax(dim=1).values.bool()
        coverage = union.float().mean(dim=-1)  # (B, S)
        reached = coverage >= self.mask_ratio
        first = torch.where(
            reached.any(dim=1),
            reached.float().argmax(dim=1),
            torch.full_like(reached[:, 0], num_strokes - 1, dtype=torch.long))
        index = first.view(batch_size, 1, 1).expand(-1, 1, union.shape[-1])
        chosen = union.gather(1, index).squeeze(1)
        return chosen.view(batch_size, grid_height, grid_width)
