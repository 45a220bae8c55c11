"""The image path shared by every reader: one decoder
(:func:`decode_image`) and one crop / square-pad / resize
(:func:`crop_pad_resize`). NumPy, OpenCV and Pillow only: importing it
loads neither torch nor the model code."""
from .decode import (BACKGROUND, MAX_ASPECT, MAX_PIXELS, ImageDecodeError,
                     decode_image, open_image, to_rgb8)
from .geometry import (MAX_SIDE_FACTOR, RESIZE_KERNELS, CropPlan, crop_pad,
                       crop_pad_resize, plan_crop, square_padding)

__all__ = [
    'BACKGROUND', 'MAX_ASPECT', 'MAX_PIXELS', 'ImageDecodeError',
    'decode_image', 'open_image', 'to_rgb8', 'MAX_SIDE_FACTOR',
    'RESIZE_KERNELS', 'CropPlan', 'crop_pad', 'crop_pad_resize', 'plan_crop',
    'square_padding'
]
