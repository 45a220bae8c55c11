"""Metrics (registry: METRICS)."""
from .reconstruction import ReconstructionMetric, psnr, ssim_map

__all__ = ['ReconstructionMetric', 'psnr', 'ssim_map']
