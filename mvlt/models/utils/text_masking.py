"""BERT-style masking of captions for masked language modelling."""
import math
from typing import NamedTuple, Optional

import torch


class MaskedText(NamedTuple):
    """Result of :func:`bert_mask_tokens`.

    Attributes:
        input_ids: (B, L) ids with the chosen tokens replaced.
        positions: (B, K) positions of the K mask slots per caption.
        labels: (B, K) original ids at active slots, -100 at unused slots.
    """
    input_ids: torch.Tensor
    positions: torch.Tensor
    labels: torch.Tensor


def num_mask_slots(seq_len: int, mask_ratio: float) -> int:
    """Static slot count K that bounds the masked tokens of any caption.

    A caption has at most ``seq_len - 2`` maskable tokens ([CLS], [SEP]
    excluded) and gets ``floor(mask_ratio * n + u)`` masks, u in [0, 1).
    """
    return max(1, int(math.floor(mask_ratio * max(seq_len - 2, 1))) + 1)


def bert_mask_tokens(input_ids: torch.Tensor,
                     maskable: torch.Tensor,
                     mask_token_id: int,
                     vocab_size: int,
                     mask_ratio: float = 0.15,
                     mask_prob: float = 0.8,
                     random_prob: float = 0.1,
                     generator: Optional[torch.Generator] = None
                     ) -> MaskedText:
    """Mask captions with BERT's rule, on the ids' device, without syncs.

    Each caption with n maskable tokens gets ``floor(mask_ratio * n + u)``
    masked positions (u uniform in [0, 1), so the expected fraction is exactly
    ``mask_ratio``), chosen uniformly among its maskable tokens. Of those,
    ``mask_prob`` become [MASK], ``random_prob`` a uniform random id of the
    vocabulary, and the rest keep their id. The number of slots K per caption
    is static (:func:`num_mask_slots`), so shapes never depend on the draw.

    Args:
        input_ids (Tensor): (B, L) token ids.
        maskable (Tensor): bool (B, L); False for [CLS], [SEP], [PAD] and any
            other special token.
        mask_token_id (int): Id of [MASK].
        vocab_size (int): Size of the vocabulary for random replacements.
        mask_ratio (float): Fraction of maskable tokens to mask (r_l).
        mask_prob, random_prob (float): BERT's 80 % / 10 % split.
        generator (torch.Generator, optional): Source of randomness.

    Returns:
        MaskedText: masked ids, slot positions and labels.
    """
    batch, seq_len = input_ids.shape
    device = input_ids.device
    slots = min(num_mask_slots(seq_len, mask_ratio), seq_len)
    num_maskable = maskable.sum(dim=1)
    jitter = torch.rand(batch, device=device, generator=generator)
    num_masked = (mask_ratio * num_maskable + jitter).floor().long()
    num_masked = torch.minimum(num_masked, num_maskable)
    scores = torch.rand(batch, seq_len, device=device, generator=generator)
    scores = scores.masked_fill(~maskable, -1.0)
    positions = scores.topk(slots, dim=1).indices  # (B, K)
    active = torch.arange(slots, device=device)[None] < num_masked[:, None]
    originals = input_ids.gather(1, positions)
    labels = originals.masked_fill(~active, -100)

    action = torch.rand(batch, slots, device=device, generator=generator)
    random_ids = torch.randint(
        vocab_size, (batch, slots), device=device, generator=generator)
    replaced = torch.where(
        action < mask_prob, torch.full_like(originals, mask_token_id),
        torch.where(action < mask_prob + random_prob, random_ids, originals))
    replaced = torch.where(active, replaced, originals)
    masked_ids = input_ids.scatter(1, positions, replaced)
    return MaskedText(masked_ids, positions, labels)


def unmask_input_ids(input_ids: torch.Tensor, positions: torch.Tensor,
                     labels: torch.Tensor) -> torch.Tensor:
    """Undo BERT masking: put ``labels`` (P, K; -100 = unused slot) back at
    ``positions`` (P, K) of ``input_ids`` (P, L)."""
    original = input_ids.gather(1, positions)
    restored = torch.where(labels >= 0, labels, original)
    return input_ids.scatter(1, positions, restored)
