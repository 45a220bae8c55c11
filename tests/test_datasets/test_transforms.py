"""LoadFashionGenImage."""
import h5py
import numpy as np
import pytest

from mvlt.datasets.transforms import LoadFashionGenImage
from mvlt.datasets.transforms.loading import close_hdf5
from mvlt.registry import TRANSFORMS
from mvlt.utils import register_all_modules


def test_registered_in_the_mvlt_scope():
    register_all_modules()
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
