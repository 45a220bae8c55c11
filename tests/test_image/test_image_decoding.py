"""Product photos as shops store them, through every decoding path.

Each file is written here: cut-outs with transparency (RGBA, palette, grey
+ alpha), 16-bit RGB and grey PNGs, a CMYK JPEG, EXIF-rotated WebP / JPEG /
PNG, an animated GIF, and plain RGB. Every path (the data set's
``LoadImage`` with each backend, the device decoder, the folder gallery,
the page's upload, the inferencer) must give the same pixels, and for the
lossless files the pixels the shop meant (transparency on white, 16 bits
scaled, EXIF applied, the first frame).
"""
import copy
import io
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from mvlt.apis import open_gallery
from mvlt.apis.catalogue_search import decode_image as decode_upload
from mvlt.datasets.transforms import LoadImage
from mvlt.image import ImageDecodeError, decode_image
from mvlt.models.data_preprocessors.image_ops import decode_images

HEIGHT, WIDTH = 48, 40
GARMENT = (200, 40, 60)


def _cutout() -> tuple:
    """(RGB stored, alpha): a garment on a transparent canvas whose hidden
    colour is black, with a half-transparent edge."""
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    alpha = np.zeros((HEIGHT, WIDTH), np.uint8)
    rgb[8:40, 10:30] = GARMENT
    alpha[8:40, 10:30] = 255
    alpha[8:40, 29] = 128
    return rgb, alpha


def _on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None].astype(np.float64) / 255
    return np.rint(rgb * a + 255 * (1 - a)).astype(np.uint8)


def _gradient() -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([x * 6, y * 5, (x + y) * 3], -1).astype(np.uint8)


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _files() -> dict:
    """name -> (bytes, expected RGB or None where lossy)."""
    rgb, alpha = _cutout()
    plain = _gradient()
    out = {}
    out['rgb_png.png'] = (_save(Image.fromarray(plain), 'PNG'), plain)
    out['rgb_jpg.jpg'] = (_save(Image.fromarray(plain), 'JPEG'), None)
    out['cutout_rgba.png'] = (_save(
        Image.fromarray(np.dstack([rgb, alpha]), 'RGBA'),
        'PNG'), _on_white(rgb, alpha))
    palette = Image.fromarray((alpha > 0).astype(np.uint8), 'P')
    palette.putpalette([0, 0, 0, *GARMENT] + [0] * 762)
    out['cutout_palette.png'] = (_save(palette, 'PNG', transparency=0),
                                 _on_white(rgb, (alpha > 0) * 255))
    grey = (rgb[..., 0] // 2).astype(np.uint8)
    out['cutout_la.png'] = (_save(
        Image.fromarray(np.dstack([grey, alpha]), 'LA'),
        'PNG'), _on_white(np.repeat(grey[..., None], 3, 2), alpha))
    out['grey.png'] = (_save(Image.fromarray(plain[..., 0], 'L'),
                             'PNG'), np.repeat(plain[..., :1], 3, 2))
    wide = plain.astype(np.uint16) * 257 + 100  # 16 bits, not x257 exactly
    ok, rgb16 = cv2.imencode('.png', wide[..., ::-1])
    out['rgb16.png'] = (rgb16.tobytes(), np.rint(wide / 257).astype(np.uint8))
    ok, grey16 = cv2.imencode('.png', wide[..., 1])
    out['grey16.png'] = (grey16.tobytes(),
                         np.repeat(
                             np.rint(wide[..., 1:2] / 257).astype(np.uint8), 3,
                             2))
    out['cmyk.jpg'] = (_save(Image.fromarray(plain).convert('CMYK'),
                             'JPEG'), None)
    # Orientation 6: the stored image is shown rotated 90 degrees clockwise.
    rotated = np.ascontiguousarray(np.rot90(plain, -1))
    out['exif_webp.webp'] = (_save(
        Image.fromarray(plain), 'WEBP', lossless=True, exif=_exif(6)), rotated)
    out['exif_png.png'] = (_save(Image.fromarray(plain), 'PNG',
                                 exif=_exif(6)), rotated)
    out['exif_jpg.jpg'] = (_save(
        Image.fromarray(plain), 'JPEG', quality=95, exif=_exif(6)), None)
    frames = [
        Image.fromarray(np.full((HEIGHT, WIDTH, 3), c, np.uint8))
        for c in ((200, 0, 0), (0, 0, 200))
    ]
    out['animated.gif'] = (_save(
        frames[0], 'GIF', save_all=True, append_images=frames[1:]),
                           np.full((HEIGHT, WIDTH, 3), (200, 0, 0), np.uint8))
    return out


FILES = _files()


@pytest.fixture(scope='module')
def folder(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('shop')
    for name, (data, _) in FILES.items():
        (root / name).write_bytes(data)
    return str(root)


def _load_image(backend):

    def read(folder, name):
        results = LoadImage(imdecode_backend=backend)(
            dict(img_path=osp.join(folder, name)))
        if backend == 'device':
            encoded = torch.from_numpy(results['img_bytes'].copy())
            image = decode_images([encoded], torch.device('cpu'))[0]
            return image.permute(1, 2, 0).numpy()
        return results['img']

    return read


def _gallery(folder, name):
    gallery = open_gallery(f'folder:{folder}')
    row = [r['product_id'] for r in gallery.rows].index(osp.splitext(name)[0])
    return gallery.read(row)


def _upload(folder, name):
    with open(osp.join(folder, name), 'rb') as f:
        return decode_upload(f.read())


PATHS = {
    'LoadImage-host': _load_image('host'),
    'LoadImage-cv2': _load_image('cv2'),
    'LoadImage-torchvision': _load_image('torchvision'),
    'device-decoder': _load_image('device'),
    'folder-gallery': _gallery,
    'upload': _upload,
}


@pytest.mark.parametrize('name', sorted(FILES))
@pytest.mark.parametrize('path', sorted(PATHS))
def test_every_path_gives_the_same_pixels(folder, path, name):
    """Within 2 grey levels of the reference decoder, and of the intended
    pixels where the file is lossless."""
    got = PATHS[path](folder, name)
    assert got.dtype == np.uint8 and got.shape[2] == 3, (got.dtype, got.shape)
    reference = decode_image(FILES[name][0])
    assert got.shape == reference.shape
    assert np.abs(got.astype(int) - reference).max() <= 2
    expected = FILES[name][1]
    if expected is not None:
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected).max() <= 2, name


def test_lossy_files_keep_their_meaning(folder):
    """CMYK and EXIF-rotated JPEGs: colours and orientation as meant (JPEG
    error only)."""
    plain = _gradient()
    cmyk = decode_image(FILES['cmyk.jpg'][0]).astype(int)
    assert np.abs(cmyk - plain).mean() < 4
    rotated = decode_image(FILES['exif_jpg.jpg'][0]).astype(int)
    assert rotated.shape == (WIDTH, HEIGHT, 3)
    assert np.abs(rotated - np.rot90(plain, -1)).mean() < 3


@pytest.mark.parametrize('name', sorted(FILES))
def test_inferencer_reads_files_as_every_path(api_setup, folder, name):
    """The inferencer's file path: the model sees the pixels of the one
    decoder (exactly) and of the intended image (lossless files)."""
    from mvlt.apis import MVLTInferencer
    if 'inferencer' not in api_setup:
        api_setup['inferencer'] = MVLTInferencer(api_setup['config'],
                                                 api_setup['checkpoint'])
    inferencer = api_setup['inferencer']
    from_file = inferencer.load_images([osp.join(folder, name)]).int()
    decoded = inferencer.load_images([decode_image(FILES[name][0])]).int()
    assert torch.equal(from_file, decoded)
    if FILES[name][1] is not None:
        meant = inferencer.load_images([FILES[name][1]]).int()
        assert int((from_file - meant).abs().max()) <= 2


def test_inferencer_sees_the_cutout_on_white(api_setup, folder):
    """The inferencer's file path gives the model the decoded pixels (the
    cut-out on white), exactly as an in-memory array of them."""
    from mvlt.apis import MVLTInferencer
    inferencer = MVLTInferencer(api_setup['config'], api_setup['checkpoint'])
    path = osp.join(folder, 'cutout_rgba.png')
    from_file = inferencer.load_images([path])
    from_array = inferencer.load_images([FILES['cutout_rgba.png'][1]])
    assert torch.equal(from_file, from_array)
    # White around the garment: the crop finds the garment, not the canvas.
    assert int(from_file[0, :, 0, 0].min()) == 255


def test_large_jpeg_decodes_at_reduced_scale():
    """libjpeg's DCT scaling: a 1,600 x 1,200 JPEG for a 256 px model decodes
    at 1/4 scale (400 x 300), close to the full decode shrunk by area."""
    y, x = np.mgrid[0:1200, 0:1600]
    photo = np.stack([x % 256, y % 256, (x // 7) % 256], -1).astype(np.uint8)
    photo = cv2.GaussianBlur(photo, (0, 0), 4)
    data = _save(Image.fromarray(photo), 'JPEG', quality=90)
    small = decode_image(data, min_size=256)
    assert small.shape == (300, 400, 3)
    full = decode_image(data)
    assert full.shape == (1200, 1600, 3)
    shrunk = cv2.resize(full, (400, 300), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - shrunk).mean() < 2
    # Only JPEGs scale; the size limits hold before pixels are allocated.
    assert decode_image(
        FILES['rgb_png.png'][0], min_size=8).shape[:2] == (HEIGHT, WIDTH)
    with pytest.raises(ImageDecodeError, match='aspect ratio'):
        decode_image(_save(Image.new('RGB', (2000, 10)), 'PNG'), max_aspect=50)


def test_truncated_jpeg_in_a_folder_gallery(tmp_path):
    """The gallery names the file (raise), or leaves it out and lists it
    (skip); a rebuilt gallery excludes the same file."""
    plain = _gradient()
    for index in range(3):
        data = _save(Image.fromarray(np.roll(plain, index, 1)), 'JPEG')
        if index == 1:
            data = data[:len(data) // 2]
        (tmp_path / f'item_{index}.jpg').write_bytes(data)
    gallery = open_gallery(str(tmp_path))
    assert len(gallery) == 3
    with pytest.raises(ImageDecodeError, match='item_1.jpg.*truncated'):
        gallery.read_many([0, 1, 2])
    skipping = open_gallery(str(tmp_path), on_bad_sample='skip')
    assert [r['product_id'] for r in skipping.rows] == ['item_0', 'item_2']
    assert len(skipping.skipped) == 1 and \
        skipping.skipped[0][0].endswith('item_1.jpg')
    assert skipping.spec['exclude'] == ['item_1.jpg']
    assert all(image.shape == (HEIGHT, WIDTH, 3)
               for image in skipping.read_many([0, 1]))
    again = open_gallery(str(tmp_path), exclude=skipping.spec['exclude'])
    assert again.rows == skipping.rows
    with pytest.raises(ValueError, match='on_bad_sample'):
        open_gallery(str(tmp_path), on_bad_sample='ignore')


def test_data_set_skips_and_counts_an_unreadable_image(tmp_path):
    """LoadImage names the truncated file; the data set's on_bad_sample
    skips it."""
    data = _save(Image.fromarray(_gradient()), 'JPEG')
    path = tmp_path / 'broken.jpg'
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageDecodeError, match='broken.jpg'):
        LoadImage()(dict(img_path=str(path)))


@pytest.fixture(scope='module')
def api_setup(nano_config, tmp_path_factory):
    """A nano model (foreground crop on) saved as config + checkpoint."""
    from mvlt.registry import MODELS
    from mvlt.utils import register_all_modules
    register_all_modules()
    root = tmp_path_factory.mktemp('decode_api')
    cfg = copy.deepcopy(nano_config)
    cfg.model.data_preprocessor.foreground_crop = dict(threshold=240)
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    checkpoint = str(root / 'nano.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    config = str(root / 'nano.py')
    cfg.dump(config)
    return dict(config=config, checkpoint=checkpoint)
