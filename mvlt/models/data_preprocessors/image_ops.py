"""Batch image operations of the data preprocessor: the garment's
foreground box, crop + square padding, and resizing to the model's size.

Product photos lie on a near-white background; the authors' reference code
trims it to the garment's box before resizing (docs/method.md section 1).
Doing this per sample in the loader workers cost ~45 % of a sample's CPU
time (the per-pixel minimum over the channels), so it runs here, once per
batch, on the batch's device.
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

# The per-image CPU steps live in the torch-free module that the ONNX
# Runtime backend shares (re-exported here for the per-sample transform).
from mvlt.deploy.preprocessing import crop_resize_image, crop_to_square

__all__ = [
    'crop_to_square', 'crop_resize_cv2', 'crop_resize_torch', 'decode_images',
    'foreground_boxes'
]

ImageBatch = Union[torch.Tensor, Sequence[torch.Tensor]]


def decode_images(encoded: Sequence[torch.Tensor],
                  device: torch.device) -> List[torch.Tensor]:
    """Encoded files (1-D uint8 tensors) -> RGB uint8 (3, H, W) on
    ``device``, EXIF orientation applied (as ``LoadImage`` decodes).

    On a GPU the JPEGs of the batch are decoded together by nvJPEG
    (``torchvision.io.decode_jpeg``); other formats, and everything on the
    CPU, by ``torchvision.io.decode_image``.
    """
    options = dict(mode=ImageReadMode.RGB, apply_exif_orientation=True)
    out: List[torch.Tensor] = [None] * len(encoded)
    jpegs = [
        i for i, data in enumerate(encoded)
        if device.type == 'cuda' and data[:2].tolist() == [0xFF, 0xD8]
    ]
    if jpegs:
        decoded = decode_jpeg([encoded[i].cpu() for i in jpegs],
                              device=device,
                              **options)
        for i, image in zip(jpegs, decoded):
            out[i] = image
    for i, data in enumerate(encoded):
        if out[i] is None:
            out[i] = decode_image(data.cpu(), **options).to(device)
    return out


def foreground_boxes(images: torch.Tensor,
                     threshold: int = 240,
                     margin: float = 0.03,
                     min_fraction: float = 0.005) -> torch.Tensor:
    """Boxes of the non-white foreground of same-size images.

    A pixel is foreground when any channel is below ``threshold``; a row
    (column) belongs to the box when it holds more than ``min_fraction`` of
    the width (height) in foreground pixels, which ignores stray specks and
    JPEG noise. The box grows by ``ceil(margin * longer side)`` pixels on
    every side (clipped to the image); an image without such rows or columns
    keeps its whole extent.

    Args:
        images (Tensor): uint8 (B, 3, H, W).
        threshold (int): Channel value below which a pixel is foreground.
        margin (float): Margin as a fraction of the box's longer side.
        min_fraction (float): Least share of foreground pixels in a row or
            column of the box.

    Returns:
        Tensor: int64 (B, 4) ``(x1, y1, x2, y2)`` in pixels, x2 / y2
        exclusive, on the images' device.
    """
    batch, _, height, width = images.shape
    foreground = images.amin(dim=1) < threshold  # (B, H, W)
    rows = foreground.sum(dim=2) > min_fraction * width  # (B, H)
    cols = foreground.sum(dim=1) > min_fraction * height  # (B, W)
    y1, y2 = _first_last(rows)
    x1, x2 = _first_last(cols)
    empty = ~(rows.any(dim=1) & cols.any(dim=1))
    longer = torch.maximum(y2 - y1, x2 - x1).to(torch.float64)
    # math.ceil of a float64 product, as the per-sample transform does.
    pad = torch.ceil(margin * longer).to(torch.int64)
    boxes = torch.stack([(x1 - pad).clamp_min(0), (y1 - pad).clamp_min(0),
                         (x2 + pad).clamp_max(width),
                         (y2 + pad).clamp_max(height)],
                        dim=1)
    full = torch.tensor([0, 0, width, height],
                        dtype=torch.int64,
                        device=images.device)
    return torch.where(empty[:, None], full, boxes)


def _first_last(flags: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """First index and last index + 1 of the True entries of each row."""
    length = flags.shape[1]
    index = torch.arange(length, device=flags.device)
    first = torch.where(flags, index, length).amin(dim=1)
    last = torch.where(flags, index, -1).amax(dim=1) + 1
    return first, last


def crop_resize_cv2(images: ImageBatch, boxes: torch.Tensor, size: Tuple[int,
                                                                         int],
                    pad_val: int, square: bool) -> torch.Tensor:
    """Crop (+ square padding) and bilinear resize, one image at a time with
    OpenCV on the host: the same pixels as the per-sample pipeline
    (``ForegroundCrop`` + mmcv's ``Resize``).

    Args:
        images: uint8 (3, H, W) tensors on the CPU.
        boxes (Tensor): (B, 4) crop boxes.
        size (tuple): Output (height, width).
        pad_val (int): Value of the square padding.
        square (bool): Pad the crop to a square before resizing.

    Returns:
        Tensor: uint8 (B, 3, height, width).
    """
    height, width = size
    out = torch.empty((len(images), 3, height, width), dtype=torch.uint8)
    for index, (image, box) in enumerate(zip(images, boxes.tolist())):
        array = crop_resize_image(
            image.permute(1, 2, 0).numpy(), box, size, pad_val, square)
        out[index] = torch.from_numpy(array).permute(2, 0, 1)
    return out


def crop_resize_torch(images: ImageBatch, boxes: torch.Tensor,
                      size: Tuple[int, int], pad_val: int,
                      square: bool) -> torch.Tensor:
    """Crop (+ square padding) and bilinear resize on the images' device.

    Bilinear with half-pixel centres and no anti-aliasing, as OpenCV's
    ``INTER_LINEAR``; OpenCV computes in fixed point, so results differ from
    :func:`crop_resize_cv2` by at most 1 grey level in a few pixels
    (tests/test_models/test_image_ops.py).

    Args and returns: as :func:`crop_resize_cv2`; images and boxes on any
    device.
    """
    height, width = size
    outputs: List[torch.Tensor] = []
    for image, box in zip(images, boxes.tolist()):
        x1, y1, x2, y2 = box
        crop = image[:, y1:y2, x1:x2]
        if square:
            crop_h, crop_w = crop.shape[1:]
            side = max(crop_h, crop_w)
            top, left = (side - crop_h) // 2, (side - crop_w) // 2
            crop = F.pad(
                crop, (left, side - crop_w - left, top, side - crop_h - top),
                value=pad_val)
        if tuple(crop.shape[1:]) != (height, width):
            crop = F.interpolate(
                crop[None].float(), (height, width),
                mode='bilinear',
                align_corners=False)[0].round_().clamp_(0, 255).to(torch.uint8)
        outputs.append(crop)
    return torch.stack(outputs)
