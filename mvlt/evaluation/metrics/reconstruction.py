"""Masked image generation (MIG) metrics: PSNR and SSIM (torchmetrics)."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from mvlt.registry import METRICS

#: Pixel range of the scored images (8-bit RGB after de-normalisation).
DATA_RANGE = 255.0


def _select(pred: torch.Tensor, target: torch.Tensor,
            mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """Check shapes; the (H, W) bool mask on the images' device, or None."""
    if pred.dim() != 3 or pred.shape != target.shape:
        raise ValueError('PSNR / SSIM need two (C, H, W) images of one '
                         f'shape, got {tuple(pred.shape)} and '
                         f'{tuple(target.shape)}.')
    if mask is None:
        return None
    mask = mask.to(pred.device).bool()
    if mask.shape != pred.shape[1:]:
        raise ValueError(f'The mask {tuple(mask.shape)} must be (H, W) of '
                         f'the images {tuple(pred.shape)}.')
    if not bool(mask.any()):
        raise ValueError('The mask selects no pixel.')
    return mask


def psnr(pred: torch.Tensor,
         target: torch.Tensor,
         mask: Optional[torch.Tensor] = None) -> float:
    """PSNR in dB of one image, over all pixels or the pixels of ``mask``.

    ``torchmetrics.functional.peak_signal_noise_ratio`` on the selected
    pixel values: 10 log10(255^2 / MSE), the MSE taken over the channels of
    the selected pixels; inf when they are identical.

    Args:
        pred, target (Tensor): (C, H, W) float pixels in [0, 255].
        mask (Tensor, optional): (H, W) bool, True where a pixel counts.

    Returns:
        float: PSNR in dB.

    Raises:
        ValueError: Shapes differ, or the mask selects no pixel.
    """
    # torchmetrics' package import loads all its domains (seconds), so it
    # happens when a metric is computed, not when mvlt is imported.
    from torchmetrics.functional.image import peak_signal_noise_ratio
    mask = _select(pred, target, mask)
    if mask is not None:
        pred, target = pred[:, mask], target[:, mask]
    return peak_signal_noise_ratio(
        pred.double(), target.double(), data_range=DATA_RANGE).item()


def ssim_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of a batch of images, averaged over channels.

    The full SSIM image (``return_full_image=True``) of
    ``torchmetrics.functional.structural_similarity_index_measure`` with
    the constants of Wang et al. 2004 (11 x 11 Gaussian window, sigma 1.5,
    K1 0.01, K2 0.03, data range 255). The window reads reflected pixels at
    the borders, so the map has the image size, and its mean is
    torchmetrics' SSIM of the image.

    Args:
        pred, target (Tensor): (B, C, H, W) pixels in [0, 255].

    Returns:
        Tensor: (B, H, W) float64 SSIM (1 where the images agree).

    Raises:
        ValueError: The shapes differ or are not (B, C, H, W).
    """
    # Imported here for the reason given in psnr().
    from torchmetrics.functional.image import \
        structural_similarity_index_measure
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError('SSIM needs two (B, C, H, W) batches of one shape, '
                         f'got {tuple(pred.shape)} and '
                         f'{tuple(target.shape)}.')
    # In float64: the local variances are differences of sums of squares of
    # 0-255 values, which float32 gets wrong by ~1e-3 of SSIM in flat
    # regions such as the white background of product photos.
    _, full = structural_similarity_index_measure(
        pred.double(),
        target.double(),
        gaussian_kernel=True,
        sigma=1.5,
        data_range=DATA_RANGE,
        k1=0.01,
        k2=0.03,
        return_full_image=True)
    return full.mean(dim=1)


def ssim(pred: torch.Tensor,
         target: torch.Tensor,
         mask: Optional[torch.Tensor] = None) -> float:
    """SSIM of one image, over all pixels or the pixels of ``mask``.

    Without a mask this is torchmetrics' SSIM (the mean of
    :func:`ssim_map`). torchmetrics has no masked SSIM, so with a mask it is
    the mean of that map over the masked pixels.

    Args:
        pred, target (Tensor): (C, H, W) float pixels in [0, 255].
        mask (Tensor, optional): (H, W) bool, True where a pixel counts.

    Returns:
        float: SSIM (1 for identical images).

    Raises:
        ValueError: Shapes differ, or the mask selects no pixel.
    """
    mask = _select(pred, target, mask)
    pixels = ssim_map(pred[None], target[None])[0]
    return (pixels.mean() if mask is None else pixels[mask].mean()).item()


@METRICS.register_module()
class ReconstructionMetric(BaseMetric):
    """PSNR and SSIM of reconstructed images, on masked pixels and overall.

    Predictions and targets are normalised images; they are mapped back to
    0-255 with ``mean`` / ``std`` and clipped before scoring. Both scores
    come from torchmetrics (see :func:`psnr` and :func:`ssim`) and are
    computed per image on the masked pixels (``*_masked``) and on all pixels
    (``*_whole``), then averaged over the images: PSNR in dB (inf for a
    pixel-exact reconstruction), SSIM the mean of torchmetrics' SSIM map.

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
        """Normalised (3, H, W) -> float64 pixels in [0, 255], on the
        image's device (the scores are computed where the model ran)."""
        image = image.double()
        return (image * self.std.to(image) + self.mean.to(image)).clamp(0, 255)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'reconstruction' not in sample or 'target_images' not in \
                    sample:
                raise KeyError(
                    'ReconstructionMetric needs reconstruction and '
                    'target_images per sample: test with '
                    "test_cfg=dict(type='MVLTTestLoop', tasks=('mir',)) "
                    '(configs/_base_/tasks/mig.py).')
            pred = self.to_pixels(sample['reconstruction'])
            target = self.to_pixels(sample['target_images'])
            # One SSIM map serves both scores (ssim() twice would make two).
            pixels = ssim_map(pred[None], target[None])[0]
            result = dict(
                sample_idx=sample.get('sample_idx'),
                psnr_whole=psnr(pred, target),
                ssim_whole=pixels.mean().item())
            mask = sample.get('image_mask')
            if mask is not None and bool(mask.any()):
                mask = _select(pred, target, mask)
                result['psnr_masked'] = psnr(pred, target, mask)
                result['ssim_masked'] = pixels[mask].mean().item()
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
