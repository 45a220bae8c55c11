"""Image-caption pairs with negatives for image-text matching."""
from typing import NamedTuple, Optional

import torch


class ITMPairs(NamedTuple):
    """Pairs built by :func:`sample_itm_pairs`.

    Attributes:
        image_index: (P,) index of each pair's image in the batch.
        text_index: (P,) index of each pair's caption in the batch.
        labels: (P,) 1 = matched (same product), 0 = not matched.
        num_matched: Python int; rows ``[:num_matched]`` are the matched
            pairs (their caption is the image's own).
    """
    image_index: torch.Tensor
    text_index: torch.Tensor
    labels: torch.Tensor
    num_matched: int


def _pick_other_product(anchor: torch.Tensor, product: torch.Tensor,
                        group: Optional[torch.Tensor], hard_prob: float,
                        generator: Optional[torch.Generator]) -> torch.Tensor:
    """For each anchor row pick a batch index of a different product.

    With probability ``hard_prob`` a candidate of the same ``group`` (for
    example the sub-category) is preferred when one exists.
    """
    device = product.device
    scores = torch.rand(
        anchor.numel(), product.numel(), device=device, generator=generator)
    other = product[anchor][:, None] != product[None, :]
    scores = torch.where(other, scores, scores - 2.0)
    if group is not None and hard_prob > 0:
        prefer = torch.rand(
            anchor.numel(), 1, device=device, generator=generator) < hard_prob
        same_group = group[anchor][:, None] == group[None, :]
        scores = scores + (prefer & same_group & other).to(scores.dtype)
    return scores.argmax(dim=1)


def sample_itm_pairs(product: torch.Tensor,
                     neg_ratio: float = 0.5,
                     num_extra_negatives: int = 0,
                     group: Optional[torch.Tensor] = None,
                     hard_negative_prob: float = 0.0,
                     generator: Optional[torch.Generator] = None) -> ITMPairs:
    """Build matched and non-matched image-caption pairs for one batch.

    ``round(neg_ratio * B)`` images, chosen at random, get the caption of a
    sample of a different product instead of their own (the reference
    implementation's scheme); in addition every image gets
    ``num_extra_negatives`` more pairs with captions of other products. The
    matched pairs come first. Shapes depend only on B and the settings.

    A caption of the same product is never used as a negative; if the whole
    batch is one product, such rows are labelled matched (1) instead.

    Args:
        product (Tensor): (B,) integer product ids.
        neg_ratio (float): Fraction of images paired with a wrong caption.
        num_extra_negatives (int): Extra wrong captions per image.
        group (Tensor, optional): (B,) group ids (e.g. sub-category) for
            hard negatives.
        hard_negative_prob (float): Probability of taking a negative from the
            same group.
        generator (torch.Generator, optional): Source of randomness.
    """
    batch = product.numel()
    device = product.device
    num_negative = int(round(neg_ratio * batch))
    num_matched = batch - num_negative
    order = torch.randperm(batch, device=device, generator=generator)
    image_index = [order]
    text_index = [order[:num_matched]]
    if num_negative > 0:
        anchors = order[num_matched:]
        text_index.append(
            _pick_other_product(anchors, product, group, hard_negative_prob,
                                generator))
    if num_extra_negatives > 0:
        anchors = torch.arange(
            batch, device=device).repeat(num_extra_negatives)
        image_index.append(anchors)
        text_index.append(
            _pick_other_product(anchors, product, group, hard_negative_prob,
                                generator))
    image_index = torch.cat(image_index)
    text_index = torch.cat(text_index)
    labels = (product[image_index] == product[text_index]).long()
    return ITMPairs(image_index, text_index, labels, num_matched)
