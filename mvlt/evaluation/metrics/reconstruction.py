"""Masked image generation (MIG) metrics: PSNR and SSIM."""
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric

from mvlt.registry import METRICS


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-coords**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    return (kernel[:, None] * kernel[None, :]).float()


def ssim_map(pred: torch.Tensor,
             target: torch.Tensor,
             data_range: float = 255.0) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004; 11x11 Gaussian, sigma 1.5).

    Args:
        pred, target (Tensor): (B, C, H, W) in [0, data_range].

    Returns:
        Tensor: (B, H, W), SSIM averaged over channels; borders use
        reflection padding so that the map has the image size.
    """
    channels = pred.shape[1]
    window = _gaussian_window().to(pred)
    window = window.expand(channels, 1, *window.shape)
    pad = window.shape[-1] // 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (pad, pad, pad, pad), mode='reflect')
        return F.conv2d(x, window, groups=channels)

    c1, c2 = (0.01 * data_range)**2, (0.03 * data_range)**2
    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    ssim = ((2 * mu_p * mu_t + c1) *
            (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return ssim.mean(dim=1)


def psnr(mse: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """PSNR in dB from a mean squared error (same scale as data_range)."""
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-10))


@METRICS.register_module()
class ReconstructionMetric(BaseMetric):
    """PSNR and SSIM of reconstructed images, on masked pixels and overall.

    Predictions and targets are normalised images; they are mapped back to
    0-255 with ``mean`` / ``std`` and clipped before scoring. PSNR is computed
    per image and averaged (dB); SSIM is the mean of the SSIM map over the
    masked pixels (``*_masked``) or all pixels (``*_whole``).

    Expects per sample ``reconstruction`` (3, H, W), ``target_images``
    (3, H, W) and, for the masked scores, ``image_mask`` (H, W); the meta
    field ``sample_idx``, when present, removes the duplicates that
    distributed padding adds.
    """

    default_prefix = 'mig'

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 collect_device: str = 'cpu',
                 prefix: str = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def to_pixels(self, image: torch.Tensor) -> torch.Tensor:
        """Normalised (3, H, W) -> float pixels in [0, 255]."""
        return (image.float().cpu() * self.std + self.mean).clamp(0, 255)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'reconstruction' not in sample or 'target_images' not in \
                    sample:
                raise KeyError(
                    'ReconstructionMetric needs reconstruction and '
                    'target_images per sample: test with '
                    "model.predict_tasks=('mir',) and "
                    'model.data_preprocessor.mask_images_in_eval=True.')
            pred = self.to_pixels(sample['reconstruction'])
            target = self.to_pixels(sample['target_images'])
            squared = (pred - target).pow(2).mean(dim=0)  # (H, W)
            ssim = ssim_map(pred[None], target[None])[0]
            result = dict(
                sample_idx=sample.get('sample_idx'),
                psnr_whole=psnr(squared.mean()).item(),
                ssim_whole=ssim.mean().item())
            mask = sample.get('image_mask')
            if mask is not None and bool(mask.any()):
                mask = mask.cpu().bool()
                result['psnr_masked'] = psnr(squared[mask].mean()).item()
                result['ssim_masked'] = ssim[mask].mean().item()
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Mean PSNR (dB) and SSIM over the images, masked and whole."""
        unique = {}
        for result in results:
            key = result.pop('sample_idx', None)
            unique[len(unique) if key is None else key] = result
        # In sample order: the float sums do not depend on how results were
        # split across processes.
        results = [unique[k] for k in sorted(unique, key=str)]
        keys = sorted({k for r in results for k in r})
        return {
            key:
            sum(r[key] for r in results if key in r) /
            max(1, sum(1 for r in results if key in r))
            for key in keys
        }
