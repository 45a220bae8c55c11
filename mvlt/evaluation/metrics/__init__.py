"""Metrics (registry: METRICS)."""
from .recognition import RecognitionMetric, accuracy, macro_f1
from .reconstruction import ReconstructionMetric, psnr, ssim, ssim_map
from .retrieval import (RetrievalMetric, best_positive_scores, count_beaten,
                        positive_ranks, recall_at_k)
from .tgir import METHODS, FashionIQMetric, composed_ranks

__all__ = [
    'ReconstructionMetric', 'psnr', 'ssim', 'ssim_map', 'RetrievalMetric',
    'best_positive_scores', 'count_beaten', 'positive_ranks', 'recall_at_k',
    'RecognitionMetric', 'accuracy', 'macro_f1', 'FashionIQMetric',
    'composed_ranks', 'METHODS'
]
