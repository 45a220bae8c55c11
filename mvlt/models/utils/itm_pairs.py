"""Image-caption pairs of image-text matching (made by the negative
samplers, ``mvlt/models/negative_samplers``)."""
from typing import Dict, NamedTuple

import torch


class ITMPairs(NamedTuple):
    """Pairs built by a negative sampler.

    Attributes:
        image_index: (P,) index of each pair's image in the batch.
        text_index: (P,) index of each pair's caption among the candidates
            (the batch's captions, or every rank's under DDP).
        labels: (P,) 1 = matched (same product or identical caption), 0 =
            not matched.
        num_matched: Python int; rows ``[:num_matched]`` are the matched
            pairs (their caption is the image's own).
    """
    image_index: torch.Tensor
    text_index: torch.Tensor
    labels: torch.Tensor
    num_matched: int


def num_loss_rows(batch: Dict[str, torch.Tensor], pairs: str,
                  total: int) -> int:
    """Rows of the batch a matched-only objective uses.

    The matched image-caption pairs come first and ``batch['num_matched']``
    says how many there are (a Python int, so slicing needs no host-device
    sync).
    """
    if pairs == 'all':
        return total
    if pairs != 'matched':
        raise ValueError(f"pairs must be 'matched' or 'all', got {pairs!r}.")
    return int(batch.get('num_matched', total))
