"""Metrics (registry: METRICS)."""
from .recognition import RecognitionMetric, accuracy, macro_f1
from .reconstruction import ReconstructionMetric, psnr, ssim_map
from .retrieval import RetrievalMetric, positive_ranks, recall_at_k

__all__ = [
    'ReconstructionMetric', 'psnr', 'ssim_map', 'RetrievalMetric',
    'positive_ranks', 'recall_at_k', 'RecognitionMetric', 'accuracy',
    'macro_f1'
]
