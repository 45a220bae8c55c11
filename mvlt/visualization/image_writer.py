"""The one writer of image files: figures, reconstructions, thumbnails."""
import os
import os.path as osp
from typing import Optional

import cv2
import numpy as np


def shrink_to_fit(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` scaled down (never up) so its longer side is at most
    ``size`` pixels, aspect ratio kept (OpenCV's area interpolation, the
    kernel for down-scaling).

    Args:
        image (np.ndarray): (H, W, C) uint8.
        size (int): Longest side in pixels, >= 1.
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    if scale >= 1:
        return image
    return cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA)


def write_rgb_image(path: str,
                    image: np.ndarray,
                    max_size: Optional[int] = None,
                    jpeg_quality: Optional[int] = None) -> None:
    """Write an RGB uint8 (H, W, 3) image, its folder made if needed.

    The format follows the file name (``.png``, ``.jpg``...). Used by the
    visualisation hook, the demo scripts and the search index's thumbnails.

    Args:
        path (str): The file.
        image (np.ndarray): (H, W, 3) RGB uint8.
        max_size (int, optional): Shrink first so the longer side is at
            most this many pixels (:func:`shrink_to_fit`; thumbnails).
        jpeg_quality (int, optional): JPEG quality 0-100 (OpenCV's default,
            95, when None).

    Raises:
        OSError: The file cannot be written (the message names it).
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    try:
        data = encode_rgb_image(image, osp.splitext(path)[1], max_size,
                                jpeg_quality)
    except ValueError:
        raise OSError(f'Cannot write image {path}.') from None
    with open(path, 'wb') as f:
        f.write(data)


def encode_rgb_image(image: np.ndarray,
                     ext: str = '.jpg',
                     max_size: Optional[int] = None,
                     jpeg_quality: Optional[int] = None) -> bytes:
    """An RGB uint8 (H, W, 3) image encoded as the bytes of a file of type
    ``ext`` (``'.jpg'``, ``'.png'``...): what :func:`write_rgb_image` writes,
    for thumbnails stored in a pack (:mod:`mvlt.apis.item_store`).

    Args: as :func:`write_rgb_image`.

    Raises:
        ValueError: OpenCV cannot encode the image as ``ext``.
    """
    if max_size is not None:
        image = shrink_to_fit(image, max_size)
    params = [] if jpeg_quality is None else [
        cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)
    ]
    try:
        ok, data = cv2.imencode(ext, np.ascontiguousarray(image[..., ::-1]),
                                params)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f'Cannot encode an image of shape {image.shape} as '
                         f'{ext}.')
    return data.tobytes()
