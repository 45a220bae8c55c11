"""PSNR / SSIM of reconstructions against hand-computed values and
torchmetrics called directly."""
import math

import pytest
import torch
from mmengine.structures import BaseDataElement
from torchmetrics.functional.image import (peak_signal_noise_ratio,
                                           structural_similarity_index_measure)

from mvlt.evaluation import ReconstructionMetric, psnr, ssim, ssim_map

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - MEAN) / STD


def _fixture():
    """A deterministic (3, 48, 40) image pair in [0, 255] and an (H, W)
    mask: 8 px units in a checkerboard over the top half (512 pixels)."""
    y, x = torch.meshgrid(torch.arange(48.), torch.arange(40.), indexing='ij')
    target = torch.stack([
        127.5 + 100 * torch.sin(x / 3 + c) * torch.cos(y / 5) for c in range(3)
    ])
    pred = (target + 25 * torch.sin(x * y / 7)).clamp(0, 255)
    mask = ((x // 8 + y // 8) % 2 == 0) & (y < 24)
    return pred.double(), target.double(), mask


def test_psnr_of_a_known_error():
    # MSE 100 on the 0-255 scale: 10 log10(255^2 / 100) = 28.1308 dB.
    target = torch.full((3, 8, 8), 100.0)
    assert psnr(target + 10, target) == pytest.approx(
        10 * math.log10(255**2 / 100), abs=1e-4)
    assert psnr(target + 10, target) == pytest.approx(28.1308, abs=1e-4)
    # Error 10 on the masked pixels only: the masked PSNR sees MSE 100.
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[2:5, 1:7] = True
    pred = target.clone()
    pred[:, mask] += 10
    assert psnr(pred, target, mask) == pytest.approx(28.1308, abs=1e-4)
    assert psnr(target, target) == math.inf


def test_ssim_of_constant_images():
    # No variance: SSIM = (2 a b + C1) / (a^2 + b^2 + C1) at every pixel,
    # with C1 = (0.01 * 255)^2 (Wang et al. 2004).
    c1 = (0.01 * 255)**2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    pred, target = torch.full((3, 16, 16), 110.0), torch.full((3, 16, 16),
                                                              100.0)
    assert ssim(pred, target) == pytest.approx(expected, abs=1e-6)
    mask = torch.eye(16, dtype=torch.bool)
    assert ssim(pred, target, mask) == pytest.approx(expected, abs=1e-6)


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    image = torch.rand(1, 3, 32, 32) * 255
    assert ssim_map(image, image).mean().item() == pytest.approx(1.0)
    assert ssim_map(image, image).shape == (1, 32, 32)
    noisy = (image + torch.randn_like(image) * 40).clamp(0, 255)
    assert ssim_map(noisy, image).mean().item() < 0.9


def test_ssim_is_exact_on_a_white_background():
    # Far from the grey square both images are flat white: SSIM 1 there
    # (float32 sums of squares of 255 give about 0.9992).
    target = torch.full((3, 64, 64), 255.0)
    pred = target.clone()
    pred[:, 40:60, 40:60] = 200.0
    far = torch.zeros(64, 64, dtype=torch.bool)
    far[:20, :20] = True
    assert ssim(pred, target, far) == pytest.approx(1.0, abs=1e-9)
    assert ssim(pred, target) < 1.0


def test_values_on_a_fixture_match_torchmetrics():
    pred, target, mask = _fixture()
    # torchmetrics called directly, the independent reference.
    psnr_whole = peak_signal_noise_ratio(
        pred[None], target[None], data_range=255.0).item()
    psnr_masked = peak_signal_noise_ratio(
        pred[:, mask], target[:, mask], data_range=255.0).item()
    ssim_whole, full = structural_similarity_index_measure(
        pred[None], target[None], data_range=255.0, return_full_image=True)
    ssim_masked = full[0].mean(dim=0)[mask].mean().item()
    assert psnr(pred, target) == pytest.approx(psnr_whole, abs=1e-5)
    assert psnr(pred, target, mask) == pytest.approx(psnr_masked, abs=1e-5)
    assert ssim(pred, target) == pytest.approx(ssim_whole.item(), abs=1e-6)
    assert ssim(pred, target, mask) == pytest.approx(ssim_masked, abs=1e-6)
    # The values themselves (torchmetrics 1.9), so that a change of the
    # library or of how it is called shows up here.
    assert psnr_whole == pytest.approx(23.47612, abs=1e-4)
    assert psnr_masked == pytest.approx(23.83372, abs=1e-4)
    assert ssim_whole.item() == pytest.approx(0.807580, abs=1e-5)
    assert ssim_masked == pytest.approx(0.819341, abs=1e-5)
    # The same numbers through the metric (normalised inputs).
    sample = dict(
        sample_idx=0,
        reconstruction=_normalise(pred),
        target_images=_normalise(target),
        image_mask=mask)
    metric = ReconstructionMetric()
    metric.process(None, [sample])
    metrics = metric.evaluate(1)
    assert metrics['mig/psnr_whole'] == pytest.approx(psnr_whole, abs=1e-3)
    assert metrics['mig/psnr_masked'] == pytest.approx(psnr_masked, abs=1e-3)
    assert metrics['mig/ssim_whole'] == pytest.approx(
        ssim_whole.item(), abs=1e-5)
    assert metrics['mig/ssim_masked'] == pytest.approx(ssim_masked, abs=1e-5)


def test_bad_shapes_and_empty_masks_are_errors():
    pred, target, mask = _fixture()
    with pytest.raises(ValueError, match='one shape'):
        psnr(pred, target[:, :-1])
    with pytest.raises(ValueError, match='no pixel'):
        ssim(pred, target, torch.zeros_like(mask))
    with pytest.raises(ValueError, match=r'must be \(H, W\)'):
        psnr(pred, target, mask[:-1])


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
    with pytest.raises(KeyError, match="tasks=\\('mir',\\)"):
        ReconstructionMetric().process(None, [dict(sample_idx=0)])
