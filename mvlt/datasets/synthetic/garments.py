"""Procedurally drawn garments whose attributes are visible in the pixels.

A garment is (type, length, colour, pattern). Every attribute changes the
drawing: the type and the length change the silhouette (sleeves, hem, legs),
the colour fills it and the pattern (stripes, dots, checks, a gradient) is
painted over it in a second shade. Views of one garment differ in position,
scale and a small rotation; the pattern turns with the garment.

Drawing is vectorised: the silhouette is rasterised by ``cv2.fillPoly``
(anti-aliased, sub-pixel vertices) and the pattern is evaluated for every
pixel at once in the garment's own coordinates. One 256 px image takes about
2 ms.
"""
import itertools
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

GARMENT_TYPES = ('shirt', 'dress', 'trousers', 'skirt')
#: Drawable beyond GARMENT_TYPES: a sleeveless top ('long': hip length,
#: 'short': cropped), the toptee category of the synthetic FashionIQ
#: (:mod:`.fashioniq`). Not in GARMENT_TYPES, so the synthetic Fashion-Gen
#: (and the demo) never draws it.
EXTRA_GARMENT_TYPES = ('top', )
LENGTHS = ('long', 'short')
#: Nominal RGB of every colour name. 'café' is Latin-1 on purpose.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    'black': (32, 32, 34),
    'grey': (135, 135, 135),
    'café': (120, 78, 45),
    'red': (205, 35, 40),
    'orange': (240, 135, 30),
    'yellow': (240, 205, 40),
    'green': (45, 140, 60),
    'teal': (20, 140, 140),
    'blue': (40, 90, 205),
    'navy': (22, 34, 112),
    'purple': (120, 55, 160),
    'pink': (240, 140, 185),
}
#: 'ombré' (a vertical gradient) is Latin-1 on purpose.
PATTERNS = ('plain', 'striped', 'dotted', 'checked', 'ombré')

#: Fashion-Gen style category of each type and sub-category of each
#: (type, length): a coarse group, so that two products of one sub-category
#: always differ in a visible attribute (colour or pattern).
CATEGORY_OF_TYPE = {
    'shirt': 'SHIRTS',
    'dress': 'DRESSES',
    'trousers': 'PANTS',
    'skirt': 'SKIRTS'
}
SUBCATEGORY_OF = {
    ('shirt', 'long'): 'LONG SLEEVE SHIRTS',
    ('shirt', 'short'): 'SHORT SLEEVE SHIRTS',
    ('dress', 'long'): 'LONG DRESSES',
    ('dress', 'short'): 'SHORT DRESSES',
    ('trousers', 'long'): 'TROUSERS',
    ('trousers', 'short'): 'SHORTS',
    ('skirt', 'long'): 'LONG SKIRTS',
    ('skirt', 'short'): 'SHORT SKIRTS',
}
#: How the caption says the length of each type.
LENGTH_WORDS = {
    'shirt': {
        'long': 'long-sleeved',
        'short': 'short-sleeved'
    },
    'dress': {
        'long': 'long',
        'short': 'short'
    },
    'trousers': {
        'long': 'long',
        'short': 'short'
    },
    'skirt': {
        'long': 'long',
        'short': 'short'
    },
    'top': {
        'long': 'long',
        'short': 'short'
    },
}

Polygon = Sequence[Tuple[float, float]]


def _mirror(polygon: Polygon) -> List[Tuple[float, float]]:
    return [(-x, y) for x, y in polygon]


# Silhouettes in the garment frame: x to the right, y down, both about
# [-1, 1]. Lists of polygons, each filled.
_SHIRT_TORSO = [(-0.22, -0.88), (-0.52, -0.78), (-0.48, 0.85), (0.48, 0.85),
                (0.52, -0.78), (0.22, -0.88), (0.0, -0.68)]
_SHIRT_SLEEVE = {
    'long': [(-0.52, -0.78), (-0.92, 0.78), (-0.72, 0.84), (-0.49, -0.3)],
    'short': [(-0.52, -0.78), (-0.86, -0.42), (-0.66, -0.25), (-0.49, -0.45)],
}
_DRESS_TOP = [(0.0, -0.78), (-0.18, -0.92), (-0.34, -0.86), (-0.30, -0.35)]
_DRESS_HEM = {
    'long': [(-0.62, 0.92)],
    'short': [(-0.5, 0.05)],
}
_DRESS_SLEEVE = [(-0.34, -0.86), (-0.52, -0.66), (-0.32, -0.58)]
_TROUSERS = {
    'long': [(-0.45, -0.9), (0.45, -0.9), (0.52, 0.92), (0.1, 0.92),
             (0.0, -0.25), (-0.1, 0.92), (-0.52, 0.92)],
    'short': [(-0.45, -0.9), (0.45, -0.9), (0.56, -0.05), (0.07, 0.0),
              (0.0, -0.42), (-0.07, 0.0), (-0.56, -0.05)],
}
_TOP = {
    'long': [(-0.2, -0.9), (-0.44, -0.72), (-0.46, 0.86), (0.46, 0.86),
             (0.44, -0.72), (0.2, -0.9), (0.0, -0.7)],
    'short': [(-0.2, -0.9), (-0.44, -0.72), (-0.47, 0.05), (0.47, 0.05),
              (0.44, -0.72), (0.2, -0.9), (0.0, -0.7)],
}
_SKIRT = {
    'long': [(-0.32, -0.9), (0.32, -0.9), (0.62, 0.92), (-0.62, 0.92)],
    'short': [(-0.34, -0.9), (0.34, -0.9), (0.56, -0.1), (-0.56, -0.1)],
}


def silhouette(garment_type: str, length: str) -> List[Polygon]:
    """Polygons (garment frame) that make up a garment's outline."""
    if garment_type == 'shirt':
        sleeve = _SHIRT_SLEEVE[length]
        return [_SHIRT_TORSO, sleeve, _mirror(sleeve)]
    if garment_type == 'dress':
        left = _DRESS_TOP + _DRESS_HEM[length]
        body = left + _mirror(left)[::-1]
        return [body, _DRESS_SLEEVE, _mirror(_DRESS_SLEEVE)]
    if garment_type == 'trousers':
        return [_TROUSERS[length]]
    if garment_type == 'skirt':
        return [_SKIRT[length]]
    if garment_type == 'top':
        return [_TOP[length]]
    raise ValueError(f'Unknown garment type {garment_type!r}; known: '
                     f'{GARMENT_TYPES + EXTRA_GARMENT_TYPES}.')


@dataclass(frozen=True)
class Garment:
    """The visible attributes of one product."""

    garment_type: str
    length: str
    colour: str
    pattern: str

    @property
    def category(self) -> str:
        """Fashion-Gen style category (the garment type)."""
        return CATEGORY_OF_TYPE[self.garment_type]

    @property
    def subcategory(self) -> str:
        """Fashion-Gen style sub-category (garment type + length)."""
        return SUBCATEGORY_OF[(self.garment_type, self.length)]

    @property
    def phrase(self) -> str:
        """'a pair of short red dotted trousers': every attribute, lower."""
        article = 'a pair of' if self.garment_type == 'trousers' else 'a'
        length = LENGTH_WORDS[self.garment_type][self.length]
        return (f'{article} {length} {self.colour} {self.pattern} '
                f'{self.garment_type}')

    @property
    def name(self) -> str:
        """Product name in title case, e.g. 'Short-Sleeved Café Ombré Shirt'.
        """
        length = LENGTH_WORDS[self.garment_type][self.length]
        return ' '.join(w.title() for w in (length, self.colour, self.pattern,
                                            self.garment_type))


def all_garments() -> List[Garment]:
    """Every attribute combination (4 x 2 x 12 x 5 = 480)."""
    return [
        Garment(*combo) for combo in itertools.product(GARMENT_TYPES, LENGTHS,
                                                       COLOURS, PATTERNS)
    ]


@dataclass(frozen=True)
class Style:
    """Per-product rendering details that do not change the attributes.

    Attributes:
        rgb: The fill colour, near the nominal colour (0-255).
        phase: Offset of the pattern in the garment frame (u, v).
        period_scale: Multiplier on the pattern period.
    """

    rgb: Tuple[float, float, float]
    phase: Tuple[float, float]
    period_scale: float


def sample_style(garment: Garment, rng: np.random.Generator) -> Style:
    """Small random colour / pattern variation of one product."""
    # A shared brightness shift and a little per-channel noise: the shade
    # varies but a grey never turns into a tint.
    rgb = np.clip(
        np.asarray(COLOURS[garment.colour], np.float64) + rng.uniform(-8, 8) +
        rng.uniform(-3, 3, 3), 0, 255)
    return Style(
        rgb=tuple(float(c) for c in rgb),
        phase=tuple(float(p) for p in rng.uniform(0, 1, 2)),
        period_scale=float(rng.uniform(0.9, 1.1)))


def _second_shade(rgb: np.ndarray) -> np.ndarray:
    """Shade of the pattern: darker on light colours, lighter on dark."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    if luma > 140:
        return rgb * 0.45
    return rgb + 0.72 * (245.0 - rgb)


def _pattern_weight(pattern: str, u: np.ndarray, v: np.ndarray, style: Style,
                    v_range: Tuple[float, float]) -> np.ndarray:
    """Share (0-1) of the second shade at garment-frame points (u, v);
    ``v_range`` is the garment's vertical extent (the gradient spans it)."""
    scale = style.period_scale
    pu, pv = style.phase
    if pattern == 'plain':
        return np.zeros_like(u)
    if pattern == 'striped':
        period = 0.16 * scale
        return (np.mod(v / period + pv, 1.0) < 0.5).astype(np.float32)
    if pattern == 'dotted':
        period, radius = 0.28 * scale, 0.085 * scale
        du = np.mod(u + pu * period, period) - period / 2
        dv = np.mod(v + pv * period, period) - period / 2
        return (du * du + dv * dv < radius * radius).astype(np.float32)
    if pattern == 'checked':
        period = 0.24 * scale
        cu = np.floor(u / period + pu).astype(np.int32)
        cv = np.floor(v / period + pv).astype(np.int32)
        return ((cu + cv) & 1).astype(np.float32)
    if pattern == 'ombré':
        top, bottom = v_range
        return np.clip(
            (v - top) / (bottom - top), 0.0, 1.0).astype(np.float32) * 0.9
    raise ValueError(f'Unknown pattern {pattern!r}; known: {PATTERNS}.')


@dataclass(frozen=True)
class View:
    """Pose of one photo: centre offset and scale (fractions of the image
    size) and rotation (degrees)."""

    offset: Tuple[float, float]
    scale: float
    angle: float


def sample_view(rng: np.random.Generator) -> View:
    """A random pose: +-6 % shift, 85-105 % scale, +-7 degrees."""
    return View(
        offset=tuple(float(o) for o in rng.uniform(-0.06, 0.06, 2)),
        scale=float(rng.uniform(0.85, 1.05)),
        angle=float(rng.uniform(-7.0, 7.0)))


def _pose(view: View, polygons: Sequence[Polygon],
          size: int) -> Tuple[np.ndarray, np.ndarray, float]:
    """Rotation matrix, centre (px) and scale (px per unit) that keep the
    whole garment inside the image."""
    theta = np.deg2rad(view.angle)
    rot = np.array([[np.cos(theta), -np.sin(theta)],
                    [np.sin(theta), np.cos(theta)]])
    scale = 0.40 * size * view.scale
    centre = size * (0.5 + np.asarray(view.offset))
    points = np.concatenate([np.asarray(p, np.float64) for p in polygons])
    spread = points @ rot.T
    low, high = spread.min(0), spread.max(0)
    margin = 0.02 * size
    # Shrink, then shift, until the drawing fits inside the margins.
    scale = min(scale, (size - 2 * margin) / float((high - low).max()))
    centre = np.clip(centre, margin - low * scale,
                     size - margin - high * scale)
    return rot, centre, scale


def draw_garment(garment: Garment,
                 style: Style,
                 view: View,
                 size: int = 256) -> np.ndarray:
    """Draw one photo of a garment on white.

    Args:
        garment: The attributes.
        style: Per-product colour / pattern variation.
        view: Pose of this photo.
        size: Side of the square image in pixels.

    Returns:
        np.ndarray: (size, size, 3) RGB uint8.
    """
    polygons = silhouette(garment.garment_type, garment.length)
    rot, centre, scale = _pose(view, polygons, size)
    # Sub-pixel vertices (4 fractional bits) keep small images smooth.
    shift = 4
    pixel_polys = [
        np.round(((np.asarray(p) @ rot.T) * scale + centre) *
                 (1 << shift)).astype(np.int32) for p in polygons
    ]
    alpha = np.zeros((size, size), np.uint8)
    cv2.fillPoly(alpha, pixel_polys, 255, cv2.LINE_AA, shift)

    # Garment-frame coordinates of every pixel centre (inverse pose).
    grid = (np.arange(size, dtype=np.float32) + 0.5 -
            centre[:, None].astype(np.float32)) / np.float32(scale)
    gx, gy = grid[0][None, :], grid[1][:, None]
    u = rot[0, 0] * gx + rot[1, 0] * gy
    v = rot[0, 1] * gx + rot[1, 1] * gy
    ys = np.concatenate([np.asarray(p)[:, 1] for p in polygons])
    weight = _pattern_weight(garment.pattern, u.astype(np.float32),
                             v.astype(np.float32), style,
                             (float(ys.min()), float(ys.max())))

    base = np.asarray(style.rgb, np.float32)
    second = _second_shade(base.astype(np.float64)).astype(np.float32)
    colour = base + weight[..., None] * (second - base)
    a = alpha.astype(np.float32)[..., None] * np.float32(1 / 255)
    img = 255.0 + a * (colour - 255.0)
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    outline = tuple(float(c) * 0.35 for c in base)
    cv2.polylines(img, pixel_polys, True, outline, max(1, size // 128),
                  cv2.LINE_AA, shift)
    return img
