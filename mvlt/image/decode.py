"""The one image decoder: an encoded file -> 8-bit RGB uint8 (H, W, 3).

Every path that reads an image file calls :func:`decode_image`: the data
sets' ``LoadImage`` (each backend), the data preprocessor's device decoder,
the inferencer, the folder / JSON-lines galleries and the search page's
upload, so that they cannot disagree about a file.

What a shop's catalogue holds, and how it is read (Pillow does each step):

- EXIF orientation, for every format that carries it (JPEG, PNG, WebP,
  TIFF): ``ImageOps.exif_transpose``.
- Transparency (RGBA, LA, palette with a transparent index) is composited
  onto white, the background of the product photos the model learns from
  (docs/image_decoding.md): a cut-out garment is seen as on a white sheet,
  never on the colour stored under the alpha (black or noise).
- Palette, grey, CMYK and YCbCr images are converted to RGB; 16-bit grey
  is scaled to 8 bits by ``round(v * 255 / 65535)`` (Pillow's own ``L``
  conversion clips at 255 instead, Pillow #2574); 16-bit RGB(A) PNGs are
  read by Pillow at their high byte (within 1 grey level of the scaled
  value).
- Animated files (GIF, APNG, WebP) give their first frame.
- A bounded decode: the size in pixels and the aspect ratio are read from
  the header and checked before pixels are allocated
  (:class:`ImageDecodeError` otherwise).
- JPEGs decode at a reduced scale (libjpeg's DCT scaling by 1/2, 1/4 or
  1/8, ``Image.draft``) when the caller says the result needs no more than
  ``min_size`` pixels a side.

This module uses numpy and Pillow only (no torch), so data-loading workers
and the web page import it cheaply.
"""
import io
import os
import warnings
from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Default limit of pixels per image: Pillow's own decompression-bomb
#: warning threshold (``PIL.Image.MAX_IMAGE_PIXELS``, 89.5 megapixels).
MAX_PIXELS = 89_478_485
#: Default limit of the longer over the shorter side: a 40:1 banner is no
#: product photo, and the square crop of such an image is mostly padding.
MAX_ASPECT = 50.0
#: The background transparent pixels are composited onto (white, the data's
#: background convention: docs/image_decoding.md).
BACKGROUND = (255, 255, 255)

Source = Union[bytes, bytearray, memoryview, np.ndarray, str, os.PathLike]


class ImageDecodeError(ValueError):
    """A file that is not a readable image, or one over the size limits.

    The message names the file (or says "the upload") and what is wrong.
    """


def _read(source: Source, name: Optional[str]) -> Tuple[bytes, str]:
    """The file's bytes and the name its errors use."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, 'rb') as f:
                return f.read(), name or f'image {path}'
        except FileNotFoundError:
            raise FileNotFoundError(
                f'Image file {path} does not exist.') from None
    if isinstance(source, np.ndarray):
        source = source.tobytes()
    return bytes(source), name or 'the image'


def open_image(data: bytes,
               name: str = 'the image',
               max_pixels: int = MAX_PIXELS,
               max_aspect: float = MAX_ASPECT) -> Image.Image:
    """Open an encoded image lazily (header only) and check its size.

    Args:
        data: The file's bytes.
        name: How errors name the file.
        max_pixels: Most pixels (width x height) accepted.
        max_aspect: Largest longer / shorter side accepted.

    Returns:
        PIL.Image.Image: The opened image, pixels not yet decoded.

    Raises:
        ImageDecodeError: Not an image Pillow reads, an empty image, or over
            a limit.
    """
    if not data:
        raise ImageDecodeError(f'Cannot decode {name}: the file is empty.')
    try:
        with warnings.catch_warnings():
            # Pillow warns on large sizes (and refuses over twice its
            # limit); the explicit limits below say what is accepted.
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(
            f'Cannot decode {name}: {err} At most {max_pixels:,} pixels are '
            'accepted.') from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        # Pillow's "cannot identify image file <BytesIO ...>" says no more.
        detail = '' if isinstance(err, UnidentifiedImageError) else f': {err}'
        raise ImageDecodeError(
            f'Cannot decode {name}: not an image file Pillow reads (JPEG, '
            f'PNG, WebP, BMP, GIF, TIFF), or a truncated one{detail}.'
        ) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageDecodeError(
            f'Cannot decode {name}: it declares {width} x {height} pixels.')
    if width * height > max_pixels:
        raise ImageDecodeError(
            f'Cannot decode {name}: {width} x {height} = '
            f'{width * height:,} pixels; at most {max_pixels:,} are '
            'accepted (a possible decompression bomb). Resize the image.')
    if max(width, height) > max_aspect * min(width, height):
        raise ImageDecodeError(
            f'Cannot decode {name}: {width} x {height} pixels is an aspect '
            f'ratio over {max_aspect:g}:1 (a banner, not a product photo). '
            'Crop the image to the product.')
    return image


def to_rgb8(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image in any mode -> RGB uint8 (H, W, 3).

    Transparency goes onto :data:`BACKGROUND`; 16-bit and 32-bit integer
    grey (``I;16*``, ``I``: 16-bit PNG / TIFF) is scaled from 0-65535.
    """
    mode = image.mode
    if mode.startswith('I;16') or mode == 'I':
        values = np.asarray(image).astype(np.int64)
        grey = ((np.clip(values, 0, 65535) * 255 + 32767) //
                65535).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == 'F':
        grey = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    palette_alpha = mode == 'P' and 'transparency' in image.info
    has_alpha = palette_alpha or mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La')
    if has_alpha:
        rgba = image.convert('RGBA')
        background = Image.new('RGBA', rgba.size, BACKGROUND + (255, ))
        image = Image.alpha_composite(background, rgba)
    if image.mode != 'RGB':
        image = image.convert('RGB')
    return np.array(image, dtype=np.uint8)


def decode_image(source: Source,
                 name: Optional[str] = None,
                 max_pixels: int = MAX_PIXELS,
                 max_aspect: float = MAX_ASPECT,
                 min_size: Optional[int] = None) -> np.ndarray:
    """Decode an image file to 8-bit RGB (see the module docstring).

    Args:
        source: The file's bytes (or a uint8 array of them), or its path.
        name: How errors name the file (default: "image PATH", or "the
            image").
        max_pixels: Most pixels accepted, checked from the header.
        max_aspect: Largest aspect ratio accepted, checked from the header.
        min_size: When given, a JPEG may decode at 1/2, 1/4 or 1/8 scale
            (libjpeg's DCT scaling), the smallest that keeps both sides at
            least ``min_size`` pixels; None decodes at full size.

    Returns:
        np.ndarray: RGB uint8 (H, W, 3), C-contiguous and writable, EXIF
        orientation applied.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        ImageDecodeError: Not an image, truncated or corrupt, or over the
            limits (the message names the file).
    """
    data, name = _read(source, name)
    image = open_image(data, name, max_pixels, max_aspect)
    try:
        if min_size is not None and image.format == 'JPEG':
            image.draft(image.mode, (int(min_size), int(min_size)))
        image.load()  # the first frame of an animation
        # In place: no copy of the pixels when there is nothing to turn.
        ImageOps.exif_transpose(image, in_place=True)
        return to_rgb8(image)
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageDecodeError(
            f'Cannot decode {name}: {err}; the file may be truncated or '
            'corrupt.') from None
