"""Image processing transforms specific to product photos."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mvlt.image import crop_pad
from mvlt.models.data_preprocessors.image_ops import foreground_boxes
from mvlt.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ForegroundCrop(BaseTransform):
    """Crop the near-white background of a product photo, keep the aspect.

    The authors' reference implementation trims the uniform white
    background to the garment's bounding box before resizing
    (``docs/method.md`` section 1); this does the same, then pads the crop
    with white to a square so that a following ``Resize(keep_ratio=False)``
    does not distort the garment.

    A pixel is foreground when any channel is below ``threshold``; a row
    (column) belongs to the box when it holds more than ``min_fraction`` of
    its width (height) in foreground pixels, which ignores stray specks and
    JPEG noise. The box grows by ``margin`` times its longer side on every
    side (clipped to the image). When no row or column qualifies, the whole
    image is kept. The data preprocessor crops whole batches with the same
    functions (``mvlt/models/data_preprocessors/image_ops.py``).

    Modifies ``img`` (H', W', 3 uint8) and ``img_shape``; adds
    ``foreground_bbox`` (x1, y1, x2, y2) in pixels of the input image
    (x2 / y2 exclusive).

    Args:
        threshold (int): Channel value below which a pixel is foreground.
        margin (float): Margin as a fraction of the box's longer side.
        min_fraction (float): Least share of foreground pixels of a row or
            column of the box.
        square (bool): Pad the crop to a square.
        pad_val (int): Value of the padding (white).
    """

    def __init__(self,
                 threshold: int = 240,
                 margin: float = 0.03,
                 min_fraction: float = 0.005,
                 square: bool = True,
                 pad_val: int = 255) -> None:
        if not 0 < threshold <= 255:
            raise ValueError(f'threshold must be in (0, 255], got '
                             f'{threshold}.')
        if margin < 0 or min_fraction < 0:
            raise ValueError('margin and min_fraction must be >= 0, got '
                             f'{margin} and {min_fraction}.')
        self.threshold = threshold
        self.margin = margin
        self.min_fraction = min_fraction
        self.square = square
        self.pad_val = pad_val

    def foreground_bbox(self, img: np.ndarray) -> tuple:
        """(x1, y1, x2, y2) of the foreground with margin, or the image."""
        pixels = torch.from_numpy(np.ascontiguousarray(img))
        pixels = pixels.permute(2, 0, 1) if pixels.ndim == 3 else pixels[None]
        box = foreground_boxes(pixels[None], self.threshold, self.margin,
                               self.min_fraction)[0]
        return tuple(int(v) for v in box.tolist())

    def transform(self, results: dict) -> dict:
        img = results['img']
        box = self.foreground_bbox(img)
        crop = crop_pad(img, box, self.pad_val, self.square)
        results.update(
            img=np.ascontiguousarray(crop),
            img_shape=crop.shape[:2],
            foreground_bbox=box)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(threshold={self.threshold}, '
                f'margin={self.margin}, min_fraction={self.min_fraction}, '
                f'square={self.square}, pad_val={self.pad_val})')
