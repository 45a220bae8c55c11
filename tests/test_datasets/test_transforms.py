"""ForegroundCrop and LoadFashionGenImage."""
import h5py
import numpy as np
import pytest

from mvlt.datasets.transforms import ForegroundCrop, LoadFashionGenImage
from mvlt.datasets.transforms.loading import close_hdf5
from mvlt.registry import TRANSFORMS
from mvlt.utils import register_all_modules


def _photo(height: int = 100, width: int = 80) -> np.ndarray:
    """White image with a dark rectangle at x 20..39, y 30..69."""
    img = np.full((height, width, 3), 255, np.uint8)
    img[30:70, 20:40] = (200, 30, 30)
    return img


def test_crops_to_the_garment_with_margin_and_white_square():
    crop = ForegroundCrop(threshold=240, margin=0.1, square=True)
    out = crop(dict(img=_photo()))
    # Box 20 x 40 px, margin 0.1 x 40 = 4 px on every side.
    assert out['foreground_bbox'] == (16, 26, 44, 74)
    img = out['img']
    assert img.shape == (48, 48, 3) and out['img_shape'] == (48, 48)
    # The 28 px wide crop is centred in the 48 px square, padded white.
    assert (img[:, :10] == 255).all() and (img[:, 38:] == 255).all()
    assert (img[4:44, 14:34] == (200, 30, 30)).all()
    assert (img[:4, 10:38] == 255).all()


def test_keeps_the_crop_without_square_and_clips_margin():
    img = _photo()
    img[0:5, 0:80] = 0  # a dark band at the top edge
    out = ForegroundCrop(margin=0.5, square=False)(dict(img=img))
    x1, y1, x2, y2 = out['foreground_bbox']
    assert (x1, y1) == (0, 0) and x2 == 80 and y2 <= 100
    assert out['img'].shape == (y2 - y1, x2 - x1, 3)


def test_falls_back_to_the_whole_image():
    white = np.full((60, 40, 3), 255, np.uint8)
    white[:, :, 0] = 250  # near-white tint: still background
    out = ForegroundCrop(threshold=240)(dict(img=white))
    assert out['foreground_bbox'] == (0, 0, 40, 60)
    assert out['img'].shape == (60, 60, 3)
    assert (out['img'][:, :10] == 255).all()


def test_ignores_specks():
    img = _photo()
    img[90, 75] = 0  # one dark pixel far from the garment
    box = ForegroundCrop(margin=0.0, min_fraction=0.02)(dict(img=img))
    assert box['foreground_bbox'] == (20, 30, 40, 70)
    box = ForegroundCrop(margin=0.0, min_fraction=0.0)(dict(img=img))
    assert box['foreground_bbox'] == (20, 30, 76, 91)
    with pytest.raises(ValueError, match='threshold'):
        ForegroundCrop(threshold=0)


def test_registered_in_the_mvlt_scope():
    register_all_modules()
    assert isinstance(
        TRANSFORMS.build(dict(type='ForegroundCrop')), ForegroundCrop)
    assert isinstance(
        TRANSFORMS.build(dict(type='LoadFashionGenImage')),
        LoadFashionGenImage)


def test_load_fashiongen_image_errors(tmp_path):
    path = str(tmp_path / 'images.h5')
    with h5py.File(path, 'w') as f:
        f['input_image'] = np.zeros((2, 8, 8, 3), np.uint8)
    load = LoadFashionGenImage()
    assert load(dict(h5_path=path, h5_row=1))['img'].shape == (8, 8, 3)
    with pytest.raises(IndexError, match=r'images\.h5: row 2 is outside'):
        load(dict(h5_path=path, h5_row=2))
    with pytest.raises(
            KeyError, match=r"images\.h5 has no data set "
            r"'photos' \(row 0\)"):
        LoadFashionGenImage(key='photos')(dict(h5_path=path, h5_row=0))
    with pytest.raises(FileNotFoundError, match='missing.h5'):
        load(dict(h5_path=str(tmp_path / 'missing.h5'), h5_row=0))
    not_hdf5 = tmp_path / 'text.h5'
    not_hdf5.write_text('not an HDF5 file')
    with pytest.raises(OSError, match=r'Cannot open .*text\.h5 as an HDF5'):
        load(dict(h5_path=str(not_hdf5), h5_row=0))
    close_hdf5(path)
