"""Retrieval on top of the model's scoring API: batching, ITC top-k
selection, ITM re-ranking and the resulting order.

Each function here is the one implementation of its step; the retrieval
test loop, :class:`mvlt.apis.MVLTInferencer` and the catalogue search all
call them (as mmpretrain keeps BLIP's retrieval scoring on the model side).
"""
from typing import Callable, Optional, Sequence

import torch

# The NumPy steps (ITC similarity, top-k, re-ranking, the one order and
# rank_candidates) live in the torch-free mvlt.utils.ranking, which the ONNX
# Runtime serving path imports too; re-exported here, on the model side.
from mvlt.utils.ranking import (ItmScores, Ranking, itc_similarity,
                                paired_itc_similarity, rank_candidates,
                                rank_order, rerank, topk_candidates)

__all__ = [
    'run_in_batches', 'itc_similarity', 'topk_candidates', 'rerank',
    'paired_itc_similarity', 'rank_order', 'Ranking', 'ItmScores',
    'rank_candidates'
]


def run_in_batches(fn: Callable[..., torch.Tensor],
                   tensors: Sequence[torch.Tensor],
                   batch_size: Optional[int] = None) -> torch.Tensor:
    """``fn(*tensors)`` computed ``batch_size`` rows at a time.

    The last batch is padded to ``batch_size`` with copies of its first row
    and the padding's outputs dropped: every call then sees the same shapes,
    and on CPU a row's output is bitwise the same whatever rows surround it.

    Args:
        fn (callable): Maps tensors with a common first dimension B to a
            tensor whose first dimension is B.
        tensors (Sequence[Tensor]): Inputs, first dimension N.
        batch_size (int, optional): Rows per call; None = one call.

    Returns:
        Tensor: The outputs concatenated, first dimension N.

    Raises:
        ValueError: No rows, or inputs with different numbers of rows.
    """
    num = tensors[0].shape[0]
    if num == 0 or any(t.shape[0] != num for t in tensors):
        raise ValueError('run_in_batches needs inputs with the same, '
                         f'non-zero number of rows, got '
                         f'{[tuple(t.shape) for t in tensors]}.')
    if batch_size is None:
        return fn(*tensors)
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    outputs = []
    for start in range(0, num, batch_size):
        chunk = [t[start:start + batch_size] for t in tensors]
        count = chunk[0].shape[0]
        if count < batch_size:
            chunk = [
                torch.cat([c, c[:1].expand(batch_size - count, *c.shape[1:])])
                for c in chunk
            ]
        outputs.append(fn(*chunk)[:count])
    return torch.cat(outputs)
