"""The one crop / square-pad / resize of an image to the model's input size.

The model sees each product photo cropped to its garment's box, padded to a
square with white (the authors' reference code trims the white background:
docs/method.md section 1) and resized bilinearly. :func:`plan_crop` states
the geometry once (box, an optional pre-reduction, the padding); two kernels
apply it:

- ``'cv2'`` (:func:`crop_pad_resize`, here): OpenCV's ``INTER_LINEAR``
  (fixed point, half-pixel centres) on the host; the default on every device,
  so a checkpoint evaluated on a CPU and on a GPU sees the same pixels;
- ``'torch'`` (``mvlt.models.data_preprocessors.image_ops``): the same plan
  with ``F.interpolate`` on the images' device, within 1 grey level of
  ``'cv2'`` (floating point instead of OpenCV's fixed point).

Memory is bounded by the output size: a crop whose longer side exceeds
:data:`MAX_SIDE_FACTOR` x the output's longer side is first shrunk to that
size with area averaging (``cv2.INTER_AREA``), so a 40,000 x 1,000 banner is
never padded to 40,000 x 40,000 (4.8 GB) on its way to 256 x 256. Crops
within that bound (every image of the demo and of Fashion-Gen at 256 px)
take the direct path, pixel for pixel as before.

NumPy and OpenCV only (no torch).
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

#: A crop longer than this many output sides is shrunk first (area
#: averaging) before padding; 8 keeps the padded square of a 256 px model
#: at most 2,048 px (12.6 MB) a side and leaves the demo's 256 -> 64 px and
#: Fashion-Gen's 256 -> 256 px on the direct path.
MAX_SIDE_FACTOR = 8
#: The resize kernels a data preprocessor may name.
RESIZE_KERNELS = ('cv2', 'torch')


class CropPlan(NamedTuple):
    """How one image becomes the model's input.

    Attributes:
        box: ``(x1, y1, x2, y2)`` crop in pixels, x2 / y2 exclusive.
        reduced: ``(height, width)`` the crop is first shrunk to (area
            averaging), or None.
        padding: ``(top, bottom, left, right)`` pixels of square padding
            added to the (shrunk) crop; zeros when not padding.
        size: Output ``(height, width)``.
    """
    box: Tuple[int, int, int, int]
    reduced: Optional[Tuple[int, int]]
    padding: Tuple[int, int, int, int]
    size: Tuple[int, int]


def square_padding(height: int, width: int) -> Tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` that centre a (height, width) image in
    a square of its longer side (the odd pixel at the bottom / right, as
    ``cv2.copyMakeBorder`` is used here and in the torch kernel)."""
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    return top, side - height - top, left, side - width - left


def plan_crop(box: Sequence[int], size: Tuple[int, int],
              square: bool) -> CropPlan:
    """The geometry of :func:`crop_pad_resize` for one image.

    Args:
        box: ``(x1, y1, x2, y2)`` crop box.
        size: Output ``(height, width)``.
        square: Pad the crop to a square before resizing.

    Returns:
        CropPlan: See its attributes.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    height, width = y2 - y1, x2 - x1
    limit = MAX_SIDE_FACTOR * max(size)
    reduced = None
    if max(height, width) > limit:
        scale = limit / max(height, width)
        reduced = (max(1, round(height * scale)), max(1, round(width * scale)))
        height, width = reduced
    padding = square_padding(height, width) if square else (0, 0, 0, 0)
    return CropPlan((x1, y1, x2, y2), reduced, padding,
                    (int(size[0]), int(size[1])))


def crop_pad(image: np.ndarray,
             box: Sequence[int],
             pad_val: int = 255,
             square: bool = True,
             reduced: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Crop an (H, W, C) or (H, W) image to ``box``, optionally shrink it to
    ``reduced`` (height, width; area averaging) and pad it with ``pad_val``
    to a square (centred: :func:`square_padding`)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    crop = image[y1:y2, x1:x2]
    if reduced is not None:
        crop = cv2.resize(
            np.ascontiguousarray(crop),
            reduced[::-1],
            interpolation=cv2.INTER_AREA)
    if not square:
        return crop
    padding = square_padding(*crop.shape[:2])
    if not any(padding):
        return crop
    channels = image.shape[2] if image.ndim == 3 else 1
    return cv2.copyMakeBorder(
        crop, *padding, cv2.BORDER_CONSTANT, value=(pad_val, ) * channels)


def crop_pad_resize(image: np.ndarray,
                    box: Sequence[int],
                    size: Tuple[int, int],
                    pad_val: int = 255,
                    square: bool = True) -> np.ndarray:
    """Crop an (H, W, C) uint8 image to ``box``, pad it to a square with
    ``pad_val`` and resize it bilinearly to ``size`` (OpenCV, on the host).

    Args:
        image: (H, W, C) or (H, W) uint8.
        box: ``(x1, y1, x2, y2)`` crop box.
        size: Output ``(height, width)``.
        pad_val: Value of the padding (255: white).
        square: Pad to a square first.

    Returns:
        np.ndarray: (height, width, C) uint8; memory used is bounded by the
        output size (see the module docstring), not by the input's.
    """
    plan = plan_crop(box, size, square)
    crop = crop_pad(image, plan.box, pad_val, square, plan.reduced)
    if crop.shape[:2] != plan.size:
        crop = cv2.resize(
            np.ascontiguousarray(crop),
            plan.size[::-1],
            interpolation=cv2.INTER_LINEAR)
    return crop
