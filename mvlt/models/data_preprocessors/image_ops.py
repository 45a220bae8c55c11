"""Batch image operations of the data preprocessor: decoding on the
device, the garment's foreground box, and the crop + square padding +
resize of :mod:`mvlt.image.geometry` applied to a batch.

Product photos lie on a near-white background; the authors' reference code
trims it to the garment's box before resizing (docs/method.md section 1).
Doing this per sample in the loader workers cost ~45 % of a sample's CPU
time (the per-pixel minimum over the channels), so it runs here, once per
batch, on the batch's device.
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from mvlt.image import (RESIZE_KERNELS, ImageDecodeError, crop_pad_resize,
                        decode_image, open_image, plan_crop, square_padding)

ImageBatch = Union[torch.Tensor, Sequence[torch.Tensor]]


def decode_images(encoded: Sequence[torch.Tensor],
                  device: torch.device) -> List[torch.Tensor]:
    """Encoded files (1-D uint8 tensors) -> RGB uint8 (3, H, W) on
    ``device``: the pixels of :func:`mvlt.image.decode_image` (the loaders'
    decoder).

    On a GPU, plain 8-bit colour JPEGs (baseline or progressive YCbCr, as
    the header says) are decoded together by nvJPEG
    (``torchvision.io.decode_jpeg``, EXIF orientation applied); every other
    file, and everything on the CPU, by :func:`mvlt.image.decode_image` on
    the host.

    Raises:
        ImageDecodeError: A file that is not a readable image.
    """
    out: List[torch.Tensor] = [None] * len(encoded)
    jpegs = [
        i for i, data in enumerate(encoded)
        if device.type == 'cuda' and _plain_jpeg(data)
    ]
    if jpegs:
        decoded = decode_jpeg([encoded[i].cpu() for i in jpegs],
                              device=device,
                              mode=ImageReadMode.RGB,
                              apply_exif_orientation=True)
        for i, image in zip(jpegs, decoded):
            out[i] = image
    for i, data in enumerate(encoded):
        if out[i] is None:
            name = f'image {i} of the batch'
            array = decode_image(data.cpu().numpy(), name=name)
            out[i] = torch.from_numpy(array).permute(2, 0, 1).to(device)
    return out


def _plain_jpeg(data: torch.Tensor) -> bool:
    """Whether an encoded file is a JPEG that nvJPEG decodes as the host
    decoder does: 8-bit YCbCr / RGB within the size limits (CMYK, grey and
    oversized files go to the host)."""
    if data[:2].tolist() != [0xFF, 0xD8]:
        return False
    try:
        image = open_image(data.cpu().numpy().tobytes())
    except ImageDecodeError:
        return False
    return image.format == 'JPEG' and image.mode == 'RGB'


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


def crop_resize(images: ImageBatch,
                boxes: torch.Tensor,
                size: Tuple[int, int],
                pad_val: int,
                square: bool,
                kernel: str = 'cv2') -> torch.Tensor:
    """Crop (+ square padding) and bilinear resize of a batch, the geometry
    of :func:`mvlt.image.plan_crop`, with the named kernel.

    ``'cv2'``: :func:`mvlt.image.crop_pad_resize` (OpenCV's fixed-point
    ``INTER_LINEAR``) one image at a time on the host, whatever the images'
    device: the same pixels on a CPU and on a GPU. ``'torch'``:
    :func:`crop_resize_torch` on the images' device (within 1 grey level of
    ``'cv2'``).

    Args:
        images: uint8 (3, H, W) tensors.
        boxes (Tensor): (B, 4) crop boxes.
        size (tuple): Output (height, width).
        pad_val (int): Value of the square padding.
        square (bool): Pad the crop to a square before resizing.
        kernel (str): ``'cv2'`` or ``'torch'`` (:data:`RESIZE_KERNELS`).

    Returns:
        Tensor: uint8 (B, 3, height, width) on the images' device.

    Raises:
        ValueError: An unknown kernel.
    """
    if kernel == 'torch':
        return crop_resize_torch(images, boxes, size, pad_val, square)
    if kernel != 'cv2':
        raise ValueError(f'Unknown resize kernel {kernel!r}; one of '
                         f'{RESIZE_KERNELS}.')
    height, width = size
    out = torch.empty((len(images), 3, height, width), dtype=torch.uint8)
    for index, (image, box) in enumerate(zip(images, boxes.tolist())):
        array = image.cpu().permute(1, 2, 0).numpy()
        out[index] = torch.from_numpy(
            crop_pad_resize(array, box, size, pad_val,
                            square)).permute(2, 0, 1)
    return out.to(images[0].device) if len(images) else out


def crop_resize_torch(images: ImageBatch, boxes: torch.Tensor,
                      size: Tuple[int, int], pad_val: int,
                      square: bool) -> torch.Tensor:
    """Crop (+ square padding) and bilinear resize on the images' device,
    the plan of :func:`mvlt.image.plan_crop` (area shrinking of over-long
    crops included).

    Bilinear with half-pixel centres and no anti-aliasing, as OpenCV's
    ``INTER_LINEAR``; OpenCV computes in fixed point, so results differ from
    the ``'cv2'`` kernel by at most 1 grey level in a few pixels
    (tests/test_models/test_image_ops.py).

    Args and returns: as :func:`crop_resize`; images and boxes on any
    device.
    """
    outputs: List[torch.Tensor] = []
    for image, box in zip(images, boxes.tolist()):
        plan = plan_crop(box, size, square)
        x1, y1, x2, y2 = plan.box
        crop = image[:, y1:y2, x1:x2]
        if plan.reduced is not None:
            # One channel at a time: the float copy of an over-long crop is
            # the memory peak here.
            crop = torch.cat([
                _to_uint8(
                    F.interpolate(
                        channel[None, None].float(), plan.reduced,
                        mode='area')) for channel in crop
            ])
        if square:
            top, bottom, left, right = square_padding(*crop.shape[1:])
            crop = F.pad(crop, (left, right, top, bottom), value=pad_val)
        if tuple(crop.shape[1:]) != plan.size:
            crop = _to_uint8(
                F.interpolate(
                    crop[None].float(),
                    plan.size,
                    mode='bilinear',
                    align_corners=False))
        outputs.append(crop)
    return torch.stack(outputs)


def _to_uint8(batch: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) float -> (C, H, W) uint8, rounded."""
    return batch[0].round_().clamp_(0, 255).to(torch.uint8)
