"""PSNR / SSIM of reconstructions against hand-computed values."""
import math

import pytest
import torch
from mmengine.structures import BaseDataElement

from mvlt.evaluation import ReconstructionMetric, psnr, ssim_map

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - MEAN) / STD


def test_psnr_of_a_known_error():
    # MSE 100 on the 0-255 scale: 10 log10(255^2 / 100) = 28.1308 dB.
    assert psnr(torch.tensor(100.0)).item() == pytest.approx(
        10 * math.log10(255**2 / 100), abs=1e-4)
    assert psnr(torch.tensor(100.0)).item() == pytest.approx(28.1308, abs=1e-4)


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    image = torch.rand(1, 3, 32, 32) * 255
    assert ssim_map(image, image).mean().item() == pytest.approx(1.0)
    noisy = (image + torch.randn_like(image) * 40).clamp(0, 255)
    assert ssim_map(noisy, image).mean().item() < 0.9


def test_metric_masked_and_whole_psnr():
    target = torch.full((3, 16, 16), 100.0)
    recon = target.clone()
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[:8] = True  # the top half is masked
    recon[:, :8] += 10.0  # error 10 on masked pixels only
    sample = BaseDataElement(metainfo=dict(sample_idx=0))
    sample.reconstruction = _normalise(recon)
    sample.target_images = _normalise(target)
    sample.image_mask = mask
    metric = ReconstructionMetric()
    # Twice: the duplicate of distributed padding counts once.
    metric.process(None, [sample.to_dict(), sample.to_dict()])
    metrics = metric.evaluate(1)
    assert metrics['mig/psnr_masked'] == pytest.approx(
        10 * math.log10(255**2 / 100), abs=1e-3)
    assert metrics['mig/psnr_whole'] == pytest.approx(
        10 * math.log10(255**2 / 50), abs=1e-3)
    assert metrics['mig/ssim_whole'] < 1.0


def test_metric_names_missing_fields():
    with pytest.raises(KeyError, match='mask_images_in_eval'):
        ReconstructionMetric().process(None, [dict(sample_idx=0)])
