"""Same-group negatives: wrong captions of the same sub-category."""
from typing import Optional

import torch

from mvlt.registry import NEGATIVE_SAMPLERS
from .base import BaseNegativeSampler, NegativeCandidates, uniform_choice


@NEGATIVE_SAMPLERS.register_module(name=['SameGroupNegatives', 'same-group'])
class SameGroupNegatives(BaseNegativeSampler):
    """With probability ``prob`` a wrong caption of the image's own group
    (by default its sub-category: same garment type and length, another
    colour or pattern), where the batch has one; otherwise any wrong
    caption, uniformly.

    Args:
        prob (float): Probability of preferring the same group.
        group (str): Which label of the batch groups the captions
            (``'subcategory_labels'`` or ``'category_labels'``).
        neg_ratio, extra_negatives: See :class:`BaseNegativeSampler`.
    """

    def __init__(self,
                 prob: float = 0.5,
                 group: str = 'subcategory_labels',
                 neg_ratio: float = 0.5,
                 extra_negatives: int = 0) -> None:
        super().__init__(neg_ratio, extra_negatives)
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'SameGroupNegatives: prob must be in [0, 1], '
                             f'got {prob}.')
        self.prob = float(prob)
        self.group = group

    def choose(self, anchors: torch.Tensor, valid: torch.Tensor,
               candidates: NegativeCandidates,
               generator: Optional[torch.Generator]) -> torch.Tensor:
        group = candidates.group
        if group is None or self.prob == 0:
            return uniform_choice(valid, generator)
        scores = torch.rand(
            valid.shape, device=valid.device, generator=generator)
        prefer = torch.rand(
            len(anchors), 1, device=valid.device,
            generator=generator) < self.prob
        own = group[candidates.offset + anchors]
        same_group = own[:, None] == group[None]
        scores = torch.where(valid, scores, scores - 2.0)
        scores = scores + (prefer & same_group & valid).to(scores.dtype)
        return scores.argmax(dim=1)
