"""Base class of the ITM negative samplers: which wrong caption each image
is paired with in image-text matching."""
from typing import NamedTuple, Optional

import torch

from ..utils import ITMPairs


class NegativeCandidates(NamedTuple):
    """The captions an image of the batch may be paired with.

    Under DDP they are every rank's captions (gathered), else the batch's;
    this rank's own captions start at ``offset``, so image ``i`` of the
    batch belongs with caption ``offset + i``.

    Attributes:
        product: (C,) product id of each caption.
        caption: (C,) int; equal values = identical caption text (word
            pieces), which is never a negative (a re-listed colourway).
        group: (C,) group id (e.g. sub-category) or None.
        similarity: (B, C) ITC similarity logits of the batch's images to
            every caption (the model's current belief), or None.
        offset: Index of this rank's first caption.
    """
    product: torch.Tensor
    caption: torch.Tensor
    group: Optional[torch.Tensor] = None
    similarity: Optional[torch.Tensor] = None
    offset: int = 0


class BaseNegativeSampler:
    """Builds the image-caption pairs of an ITM batch.

    ``round(neg_ratio * B)`` images, chosen at random, are paired with a
    wrong caption instead of their own (the authors' scheme: half of them);
    in addition every image gets ``extra_negatives`` more pairs with wrong
    captions. Matched pairs come first, and their count is a Python int, so
    shapes depend only on B and the settings (no host-device sync).

    A wrong caption is one of another product whose text differs from the
    image's own caption. When an image has none (the batch is one product),
    the drawn pair is labelled matched. Subclasses decide which wrong caption
    (:meth:`choose`); every draw uses the given generator, so sampling is
    reproducible from the seed and resumes exactly.

    Args:
        neg_ratio (float): Share of images paired with a wrong caption.
        extra_negatives (int): Extra wrong captions per image.
    """

    #: Whether :meth:`choose` reads the ITC similarities (the model then
    #: needs an ITC head).
    needs_similarity: bool = False

    def __init__(self,
                 neg_ratio: float = 0.5,
                 extra_negatives: int = 0) -> None:
        if not 0.0 <= neg_ratio <= 1.0 or extra_negatives < 0:
            raise ValueError(
                f'{type(self).__name__}: neg_ratio must be in [0, 1] and '
                f'extra_negatives >= 0, got {neg_ratio} and '
                f'{extra_negatives}.')
        self.neg_ratio = float(neg_ratio)
        self.extra_negatives = int(extra_negatives)

    def __call__(self, num_images: int, candidates: NegativeCandidates,
                 generator: Optional[torch.Generator]) -> ITMPairs:
        """Pairs of the batch's ``num_images`` images.

        Returns:
            ITMPairs: ``image_index`` (P,) into the batch, ``text_index``
            (P,) into the candidates, ``labels`` (1 = matched: same product
            or identical caption), ``num_matched``.
        """
        device = candidates.product.device
        num_negative = int(round(self.neg_ratio * num_images))
        num_matched = num_images - num_negative
        order = torch.randperm(num_images, device=device, generator=generator)
        image_index = [order]
        text_index = [candidates.offset + order[:num_matched]]
        if num_negative > 0:
            anchors = order[num_matched:]
            text_index.append(self._wrong(anchors, candidates, generator))
        if self.extra_negatives > 0:
            anchors = torch.arange(
                num_images, device=device).repeat(self.extra_negatives)
            image_index.append(anchors)
            text_index.append(self._wrong(anchors, candidates, generator))
        image_index = torch.cat(image_index)
        text_index = torch.cat(text_index)
        own = candidates.offset + image_index
        labels = (
            candidates.product[own] == candidates.product[text_index]) | (
                candidates.caption[own] == candidates.caption[text_index])
        return ITMPairs(image_index, text_index, labels.long(), num_matched)

    def _wrong(self, anchors: torch.Tensor, candidates: NegativeCandidates,
               generator: Optional[torch.Generator]) -> torch.Tensor:
        own = candidates.offset + anchors
        valid = (
            candidates.product[own][:, None] != candidates.product[None]) & (
                candidates.caption[own][:, None] != candidates.caption[None])
        return self.choose(anchors, valid, candidates, generator)

    def choose(self, anchors: torch.Tensor, valid: torch.Tensor,
               candidates: NegativeCandidates,
               generator: Optional[torch.Generator]) -> torch.Tensor:
        """One candidate per anchor image.

        Args:
            anchors (Tensor): (A,) batch rows of the images.
            valid (Tensor): (A, C) bool, True where a candidate is a wrong
                caption for that image.
            candidates (NegativeCandidates): The pool.
            generator (torch.Generator, optional): Source of randomness.

        Returns:
            Tensor: (A,) int64 candidate indices; a valid one wherever the
            row has one.
        """
        raise NotImplementedError(
            f'{type(self).__name__} must implement choose().')


def uniform_choice(valid: torch.Tensor,
                   generator: Optional[torch.Generator],
                   bonus: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A uniformly random valid column per row (any column if none).

    Args:
        valid (Tensor): (A, C) bool.
        generator (torch.Generator, optional): Source of randomness.
        bonus (Tensor, optional): (A, C) bool; columns preferred over the
            other valid ones.
    """
    scores = torch.rand(valid.shape, device=valid.device, generator=generator)
    scores = torch.where(valid, scores, scores - 2.0)
    if bonus is not None:
        scores = scores + (bonus & valid).to(scores.dtype)
    return scores.argmax(dim=1)
