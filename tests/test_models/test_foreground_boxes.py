"""The garment's foreground box (the data preprocessor's crop; formerly
also the per-sample ForegroundCrop transform, which no config used)."""
import numpy as np
import torch

from mvlt.models.data_preprocessors.image_ops import foreground_boxes


def _photo(height: int = 100, width: int = 80) -> np.ndarray:
    """White image with a dark rectangle at x 20..39, y 30..69."""
    img = np.full((height, width, 3), 255, np.uint8)
    img[30:70, 20:40] = (200, 30, 30)
    return img


def _box(img: np.ndarray, **kwargs) -> tuple:
    batch = torch.from_numpy(img).permute(2, 0, 1)[None]
    return tuple(foreground_boxes(batch, **kwargs)[0].tolist())


def test_box_of_the_garment_with_margin():
    # Box 20 x 40 px, margin 0.1 x 40 = 4 px on every side.
    assert _box(_photo(), threshold=240, margin=0.1) == (16, 26, 44, 74)


def test_margin_is_clipped_to_the_image():
    img = _photo()
    img[0:5, 0:80] = 0  # a dark band at the top edge
    x1, y1, x2, y2 = _box(img, margin=0.5)
    assert (x1, y1) == (0, 0) and x2 == 80 and y2 <= 100


def test_falls_back_to_the_whole_image():
    white = np.full((60, 40, 3), 255, np.uint8)
    white[:, :, 0] = 250  # near-white tint: still background
    assert _box(white, threshold=240) == (0, 0, 40, 60)


def test_ignores_specks():
    img = _photo()
    img[90, 75] = 0  # one dark pixel far from the garment
    assert _box(img, margin=0.0, min_fraction=0.02) == (20, 30, 40, 70)
    assert _box(img, margin=0.0, min_fraction=0.0) == (20, 30, 76, 91)
