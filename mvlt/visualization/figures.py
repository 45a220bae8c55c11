"""Figures of the evaluations: retrieval rankings and MIG triplets.

All functions return RGB uint8 arrays (H, W, 3); drawing uses OpenCV.
"""
import textwrap
import unicodedata
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
import torch

Item = Union[np.ndarray, str]

GREEN = (40, 170, 60)
RED = (210, 50, 50)
GREY = (160, 160, 160)
WHITE = (255, 255, 255)
BLACK = (20, 20, 20)


def to_rgb_uint8(image: Union[np.ndarray, torch.Tensor]) -> np.ndarray:
    """(3, H, W) or (H, W, 3) uint8 / 0-255 float -> (H, W, 3) uint8."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] \
            not in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = image.repeat(3, axis=-1)
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))


def denormalize(image: torch.Tensor, mean: Sequence[float],
                std: Sequence[float]) -> np.ndarray:
    """Normalised (3, H, W) -> (H, W, 3) uint8 pixels."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)
    pixels = image.detach().float().cpu() * std_t + mean_t
    return to_rgb_uint8(pixels.round())


def text_panel(text: str,
               size: int,
               width: Optional[int] = None,
               font_scale: float = 0.0) -> np.ndarray:
    """A white panel with ``text`` wrapped to fit (size x width)."""
    width = width or size
    panel = np.full((size, width, 3), 255, np.uint8)
    scale = font_scale or max(0.3, size / 256 * 0.5)
    char_w = cv2.getTextSize('a', cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    line_h = int(
        cv2.getTextSize('Ag', cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] * 1.8)
    columns = max(4, (width - 8) // max(char_w, 1))
    lines = textwrap.wrap(text, columns) or ['']
    for i, line in enumerate(lines):
        y = 6 + line_h * (i + 1)
        if y > size - 4:
            break
        # OpenCV's Hershey fonts are ASCII: 'café' is drawn as 'cafe'.
        ascii_line = unicodedata.normalize('NFKD',
                                           line).encode('ascii',
                                                        'ignore').decode()
        cv2.putText(panel, ascii_line, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    BLACK, 1, cv2.LINE_AA)
    return panel


def _tile(item: Item, size: int) -> np.ndarray:
    if isinstance(item, str):
        return text_panel(item, size)
    image = to_rgb_uint8(item)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def _frame(tile: np.ndarray, colour: tuple, label: str) -> np.ndarray:
    border = max(3, tile.shape[0] // 40)
    framed = cv2.copyMakeBorder(
        tile,
        border,
        border,
        border,
        border,
        cv2.BORDER_CONSTANT,
        value=colour)
    caption = np.full((22, framed.shape[1], 3), 255, np.uint8)
    cv2.putText(caption, label, (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                colour if colour != GREY else BLACK, 1, cv2.LINE_AA)
    return np.concatenate([framed, caption], axis=0)


def _with_title(row: np.ndarray, title: str) -> np.ndarray:
    """Put a 24-pixel white header with ``title`` above ``row`` (if any)."""
    if not title:
        return row
    header = np.full((24, row.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, BLACK,
                1, cv2.LINE_AA)
    return np.concatenate([header, row], axis=0)


def retrieval_figure(query: Item,
                     candidates: Sequence[Item],
                     is_positive: Sequence[bool],
                     scores: Sequence[float],
                     extra_positive: Optional[Item] = None,
                     extra_rank: Optional[int] = None,
                     size: int = 128,
                     title: str = '') -> np.ndarray:
    """Query, its top candidates (positives framed green, others red), and
    the positive with its rank when it is not among them.

    Args:
        query: Image (query of image->text) or caption string.
        candidates: Top-k images or captions, best first.
        is_positive: Whether each candidate matches the query.
        scores: Each candidate's score.
        extra_positive: The best positive when outside the top-k.
        extra_rank: Its rank.
        size: Tile side in pixels.
        title: Line above the figure (protocol, direction, rank).
    """
    tiles = [_frame(_tile(query, size), GREY, 'query')]
    for rank, (item, positive, score) in enumerate(
            zip(candidates, is_positive, scores), start=1):
        colour = GREEN if positive else RED
        mark = 'match' if positive else 'no'
        tiles.append(
            _frame(_tile(item, size), colour, f'#{rank} {score:.3f} {mark}'))
    if extra_positive is not None:
        gap = np.full((tiles[0].shape[0], max(8, size // 8), 3), 255, np.uint8)
        tiles.append(gap)
        tiles.append(
            _frame(
                _tile(extra_positive, size), GREEN, f'match at #{extra_rank}'))
    return _with_title(np.concatenate(tiles, axis=1), title)


def reconstruction_figure(masked: np.ndarray,
                          reconstruction: np.ndarray,
                          original: np.ndarray,
                          size: int = 128,
                          title: str = '') -> np.ndarray:
    """Masked input | reconstruction | original, side by side."""
    tiles: List[np.ndarray] = []
    for image, label in ((masked, 'masked'), (reconstruction, 'reconstructed'),
                         (original, 'original')):
        tiles.append(_frame(_tile(image, size), GREY, label))
    return _with_title(np.concatenate(tiles, axis=1), title)


def masked_view(original: np.ndarray,
                mask: np.ndarray,
                fill: Sequence[int] = (128, 128, 128)) -> np.ndarray:
    """Show masked pixels of an (H, W, 3) image in a flat grey."""
    shown = original.copy()
    shown[np.asarray(mask, bool)] = np.asarray(fill, np.uint8)
    return shown
