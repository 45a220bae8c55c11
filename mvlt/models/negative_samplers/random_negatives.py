"""Random negatives: the paper's ITM sampling."""
from typing import Optional

import torch

from mvlt.registry import NEGATIVE_SAMPLERS
from .base import BaseNegativeSampler, NegativeCandidates, uniform_choice


@NEGATIVE_SAMPLERS.register_module(name=['RandomNegatives', 'random'])
class RandomNegatives(BaseNegativeSampler):
    """A wrong caption drawn uniformly at random (paper section 3.2: "a
    caption of a different product chosen at random").

    Args: see :class:`BaseNegativeSampler`.
    """

    def choose(self, anchors: torch.Tensor, valid: torch.Tensor,
               candidates: NegativeCandidates,
               generator: Optional[torch.Generator]) -> torch.Tensor:
        return uniform_choice(valid, generator)
