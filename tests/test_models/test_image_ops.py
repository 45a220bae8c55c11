"""Batch image preparation of the data preprocessor: the same pixels as the
former per-sample pipeline (crop + square padding, then Resize), decoding on
the model's device, and the stated tolerance of the accelerator path."""
import copy

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Resize

from mvlt.datasets.synthetic import all_garments, draw_garment
from mvlt.datasets.synthetic.garments import sample_style, sample_view
from mvlt.image import crop_pad
from mvlt.models.data_preprocessors.image_ops import (crop_resize,
                                                      crop_resize_torch,
                                                      decode_images,
                                                      foreground_boxes)
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules

register_all_modules()


@pytest.fixture(scope='module')
def photos() -> list:
    """Drawn garments on white (256 px), plus a blank and a noisy photo."""
    rng = np.random.default_rng(0)
    garments = all_garments()
    images = [
        draw_garment(garments[i], sample_style(garments[i], rng),
                     sample_view(rng), 256)
        for i in rng.choice(len(garments), 12, replace=False)
    ]
    images.append(np.full((256, 256, 3), 255, np.uint8))
    images.append(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    return images


def _chw(images: list) -> list:
    return [torch.from_numpy(img).permute(2, 0, 1) for img in images]


def _per_sample(images: list, size: int) -> torch.Tensor:
    """What the per-sample pipeline (the foreground box of each image alone,
    crop + white square padding, mmcv's Resize) gave."""
    resize = Resize(scale=(size, size), keep_ratio=False)
    out = []
    for img in images:
        box = foreground_boxes(_chw([img])[0][None], 240, 0.03)[0]
        crop = crop_pad(img, box.tolist(), 255, True)
        results = resize.transform(dict(img=crop, img_shape=crop.shape[:2]))
        out.append(torch.from_numpy(results['img']).permute(2, 0, 1))
    return torch.stack(out)


def test_boxes_of_a_batch_equal_those_of_each_image(photos):
    boxes = foreground_boxes(torch.stack(_chw(photos)))
    expected = [
        tuple(foreground_boxes(image[None])[0].tolist())
        for image in _chw(photos)
    ]
    assert [tuple(b) for b in boxes.tolist()] == expected
    # A blank photo keeps its whole extent.
    assert boxes[-2].tolist() == [0, 0, 256, 256]


@pytest.mark.parametrize('size', [64, 256])
def test_cpu_path_gives_the_pipeline_pixels(photos, size):
    boxes = foreground_boxes(torch.stack(_chw(photos)))
    assert torch.equal(
        crop_resize(_chw(photos), boxes, (size, size), 255, True, 'cv2'),
        _per_sample(photos, size))


@pytest.mark.parametrize('size', [64, 256])
def test_torch_path_is_within_one_grey_level(photos, size):
    """The accelerator path (bilinear in float, rounded) differs from
    OpenCV's fixed-point bilinear by at most 1 grey level in few pixels."""
    boxes = foreground_boxes(torch.stack(_chw(photos)))
    reference = _per_sample(photos, size).int()
    batched = crop_resize_torch(_chw(photos), boxes, (size, size), 255,
                                True).int()
    difference = (batched - reference).abs()
    assert int(difference.max()) <= 1
    assert float((difference > 0).float().mean()) < 0.05


def test_preprocessor_prepares_mixed_sizes(nano_config, photos):
    cfg = copy.deepcopy(nano_config.model.data_preprocessor)
    cfg.foreground_crop = dict(threshold=240, margin=0.03)
    preprocessor = MODELS.build(cfg)
    images = _chw(photos[:3]) + [torch.zeros(3, 30, 50, dtype=torch.uint8)]
    prepared = preprocessor.prepare_images(images)
    assert prepared.shape == (4, 3, 64, 64) and prepared.dtype == torch.uint8
    assert torch.equal(prepared[:3], _per_sample(photos[:3], 64))
    # No crop and images already at the model's size: passed through.
    cfg.foreground_crop = None
    plain = MODELS.build(cfg)
    same = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)] * 2
    assert torch.equal(plain.prepare_images(same), torch.stack(same))
    cfg.img_size = None
    with pytest.raises(ValueError, match='different sizes'):
        MODELS.build(cfg).prepare_images(images)
    cfg.foreground_crop = dict(threshhold=240)
    with pytest.raises(KeyError, match='threshhold'):
        MODELS.build(cfg)


def test_decoding_on_the_device_equals_the_loader(tmp_path, photos):
    import cv2
    files = []
    for index, img in enumerate(photos[:3]):
        path = str(tmp_path / f'{index}.jpg')
        cv2.imwrite(path, img[..., ::-1])
        files.append(open(path, 'rb').read())
    png = str(tmp_path / 'p.png')
    cv2.imwrite(png, photos[3][..., ::-1])
    files.append(open(png, 'rb').read())
    encoded = [
        torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in files
    ]
    decoded = decode_images(encoded, torch.device('cpu'))
    for image, data in zip(decoded, files):
        # The pixels of libjpeg-turbo / libpng as OpenCV reads them.
        loader = cv2.imdecode(np.frombuffer(data, np.uint8),
                              cv2.IMREAD_COLOR)[..., ::-1]
        assert torch.equal(image,
                           torch.from_numpy(loader.copy()).permute(2, 0, 1))


def test_default_kernel_is_the_same_on_cpu_and_gpu(nano_config, photos):
    """The resize kernel is a preprocessor option, not the device's choice:
    the default-GPU-kernel path (run here on the CPU) gives the pixels of
    CPU preprocessing, where the former GPU path (``'torch'``) was up to 1
    grey level off."""
    cfg = copy.deepcopy(nano_config.model.data_preprocessor)
    cfg.foreground_crop = dict(threshold=240, margin=0.03)
    preprocessor = MODELS.build(cfg)
    assert preprocessor.resize_kernel == 'cv2'
    images = _chw(photos)
    cpu = preprocessor.prepare_images(images)
    boxes = foreground_boxes(torch.stack(images))
    gpu_default = crop_resize(images, boxes, (64, 64), 255, True,
                              preprocessor.resize_kernel)
    assert torch.equal(cpu, gpu_default)
    torch_kernel = MODELS.build(dict(cfg, resize_kernel='torch'))
    difference = (torch_kernel.prepare_images(images).int() - cpu.int()).abs()
    assert 0 < int(difference.max()) <= 1
    with pytest.raises(ValueError, match='resize_kernel'):
        MODELS.build(dict(cfg, resize_kernel='cuda'))


@pytest.mark.parametrize('fmt', ['.jpg', '.png'])
def test_plain_rgb_files_give_the_former_pixels(nano_config, photos, fmt,
                                                tmp_path):
    """Plain 8-bit RGB files (the demo's kind): the data set's decoder and
    the preprocessor give bit for bit what the former path gave, restated
    with its libraries: torchvision's ``decode_image`` (the former
    default decoder), square padding with ``cv2.copyMakeBorder`` and
    ``cv2.resize`` (INTER_LINEAR)."""
    from torchvision.io import ImageReadMode, decode_image

    from mvlt.datasets.transforms import LoadImage
    cfg = copy.deepcopy(nano_config.model.data_preprocessor)
    cfg.foreground_crop = dict(threshold=240, margin=0.03)
    images = photos[:6] + [cv2.resize(photos[0], (300, 180))]
    for size in (64, 256):
        preprocessor = MODELS.build(dict(cfg, img_size=size))
        for index, photo in enumerate(images):
            path = str(tmp_path / f'{index}{fmt}')
            cv2.imwrite(path, photo[..., ::-1])
            loaded = LoadImage()(dict(img_path=path))['img']
            new = preprocessor.prepare_images(
                [torch.from_numpy(loaded).permute(2, 0, 1)])[0]
            data = torch.from_numpy(np.fromfile(path, np.uint8))
            former = decode_image(
                data, mode=ImageReadMode.RGB, apply_exif_orientation=True)
            x1, y1, x2, y2 = foreground_boxes(former[None])[0].tolist()
            crop = former.permute(1, 2, 0).numpy()[y1:y2, x1:x2]
            side = max(crop.shape[:2])
            top = (side - crop.shape[0]) // 2
            left = (side - crop.shape[1]) // 2
            crop = cv2.copyMakeBorder(
                crop,
                top,
                side - crop.shape[0] - top,
                left,
                side - crop.shape[1] - left,
                cv2.BORDER_CONSTANT,
                value=(255, ) * 3)
            if crop.shape[:2] != (size, size):
                crop = cv2.resize(
                    crop, (size, size), interpolation=cv2.INTER_LINEAR)
            assert torch.equal(new, torch.from_numpy(crop).permute(2, 0, 1))
