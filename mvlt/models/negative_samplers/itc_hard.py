"""ITC-mined hard negatives: the wrong captions the model confuses."""
from typing import Optional

import torch

from mvlt.registry import NEGATIVE_SAMPLERS
from .base import BaseNegativeSampler, NegativeCandidates, uniform_choice


@NEGATIVE_SAMPLERS.register_module(name=['ITCHardNegatives', 'itc-hard'])
class ITCHardNegatives(BaseNegativeSampler):
    """A wrong caption drawn with probability softmax(ITC similarity) over
    the wrong captions (ALBEF / BLIP, as mmpretrain and LAVIS train ITM):
    the captions the model currently finds closest to the image are the
    most likely negatives, so ITM learns the distinctions ITC still blurs
    (patterns, lengths) instead of the ones it already makes (colours).

    Needs an ITC head (its similarity logits, image-text dot products over
    its learned temperature). With probability ``uniform_prob`` a negative
    is drawn uniformly instead, which keeps some easy pairs while the ITC
    embeddings are still random.

    Args:
        uniform_prob (float): Share of uniformly drawn negatives.
        neg_ratio, extra_negatives: See :class:`BaseNegativeSampler`.
    """

    needs_similarity = True

    def __init__(self,
                 uniform_prob: float = 0.0,
                 neg_ratio: float = 0.5,
                 extra_negatives: int = 0) -> None:
        super().__init__(neg_ratio, extra_negatives)
        if not 0.0 <= uniform_prob <= 1.0:
            raise ValueError('ITCHardNegatives: uniform_prob must be in '
                             f'[0, 1], got {uniform_prob}.')
        self.uniform_prob = float(uniform_prob)

    def choose(self, anchors: torch.Tensor, valid: torch.Tensor,
               candidates: NegativeCandidates,
               generator: Optional[torch.Generator]) -> torch.Tensor:
        if candidates.similarity is None:
            raise ValueError(
                'ITCHardNegatives needs ITC similarities: add an ITC head '
                "(model.heads.itc=dict(type='ITCHead', ...)) and train it.")
        logits = candidates.similarity[anchors].float()
        # A NaN / inf similarity (a NaN image, a half-precision overflow) is
        # never drawn from: the ITC loss of the step is non-finite anyway,
        # and the non-finite guard skips and counts the step, which an
        # exception in torch.multinomial would never let it do (ALBEF #107).
        usable = valid & torch.isfinite(logits)
        logits = logits.masked_fill(~usable, float('-inf'))
        # Rows without a usable wrong caption: uniform over the wrong ones,
        # or over all (no wrong caption: the pair is labelled matched).
        fallback = torch.where(
            valid.any(dim=1, keepdim=True),
            torch.zeros_like(logits).masked_fill(~valid, float('-inf')),
            torch.zeros_like(logits))
        logits = torch.where(usable.any(dim=1, keepdim=True), logits, fallback)
        weights = torch.softmax(logits - logits.amax(1, keepdim=True), 1)
        hard = torch.multinomial(weights, 1, generator=generator)[:, 0]
        if self.uniform_prob == 0:
            return hard
        easy = uniform_choice(valid, generator)
        pick = torch.rand(
            len(anchors), device=valid.device,
            generator=generator) < self.uniform_prob
        return torch.where(pick, easy, hard)
