"""Image-caption pairs of an ITM training batch: the candidate captions
(this batch's, or every rank's under DDP) and the paired rows."""
import warnings
from typing import Dict, Optional, Tuple

import torch
import torch.distributed.nn.functional as dist_nn
from mmengine.dist import all_gather, get_dist_info

from .itm_pairs import ITMPairs
from .text_masking import unmask_input_ids

#: Per-caption fields of a training batch, gathered with the captions
#: (``caption_key``: :meth:`mvlt.text.tokenizer.CaptionEncoder.key_ids`).
CAPTION_FIELDS = ('input_ids', 'attention_mask', 'mlm_positions', 'mlm_labels',
                  'caption_key')
#: Per-image fields, indexed by the pairs' image rows.
IMAGE_FIELDS = ('images', 'target_images', 'image_mask', 'product_index',
                'category_labels', 'subcategory_labels')


def caption_identity(input_ids: torch.Tensor,
                     attention_mask: torch.Tensor,
                     caption_key: Optional[torch.Tensor] = None
                     ) -> torch.Tensor:
    """(N,) int ids, equal exactly where two captions are identical.

    Identical means the same :func:`mvlt.text.tokenizer.caption_key` (the
    text after the tokenizer's normalisation), as in the retrieval
    protocols: ``caption_key`` holds its (N,) int64 ids, which the data
    preprocessor computes when it tokenises the captions. Captions that come
    pre-tokenised (no text, no ``caption_key``) are identical when their word
    pieces are.
    """
    if caption_key is not None:
        return torch.unique(caption_key, return_inverse=True)[1]
    ids = input_ids.masked_fill(attention_mask == 0, -1)
    return torch.unique(ids, dim=0, return_inverse=True)[1]


def _gather(tensor: torch.Tensor) -> torch.Tensor:
    return torch.cat(all_gather(tensor.contiguous()))


def gather_with_local_grad(tensor: torch.Tensor,
                           across_ranks: bool = True,
                           with_grad: bool = False
                           ) -> Tuple[torch.Tensor, int]:
    """Every rank's rows of ``tensor``, this rank's keeping their gradient.

    Args:
        tensor (Tensor): (B, ...) rows of this rank (every rank the same B).
        across_ranks (bool): False (or a single process): just ``tensor``.
        with_grad (bool): Let the gradient of every rank's loss flow back
            to the rank that computed the rows (the gathered copies are
            differentiable; their backward sums the ranks' gradients, as
            OpenCLIP's ``--gather-with-grad``). Default False: the other
            ranks' rows are constants here (ALBEF / BLIP), so a rank's
            gradient misses the terms that its rows contribute to the other
            ranks' losses.

    Returns:
        tuple: (W * B, ...) rows in rank order and the index of this rank's
        first row.
    """
    rank, world = get_dist_info()
    if not across_ranks or world == 1:
        return tensor, 0
    if with_grad:
        with warnings.catch_warnings():
            # torch 2.14 marks torch.distributed.nn.functional.all_gather
            # deprecated in favour of the private _functional_collectives;
            # it is the public differentiable gather (gloo and NCCL).
            warnings.simplefilter('ignore', FutureWarning)
            parts = list(dist_nn.all_gather(tensor.contiguous()))
    else:
        parts = all_gather(tensor.detach().contiguous())
    parts[rank] = tensor
    return torch.cat(parts), rank * tensor.shape[0]


def candidate_pool(inputs: Dict[str, torch.Tensor],
                   across_ranks: bool) -> Tuple[Dict[str, torch.Tensor], int]:
    """The captions images may be paired with, and this rank's offset.

    Args:
        inputs (dict): A training batch of B image-caption rows (BERT-masked
            captions with their ``mlm_positions`` / ``mlm_labels``).
        across_ranks (bool): Under DDP, gather every rank's captions
            (every rank must hold the same B and caption length).

    Returns:
        tuple: dict with the caption fields, ``product_index`` and
        ``caption_id`` (identity of the unmasked text) of every candidate;
        the index of this rank's first caption.
    """
    pool = {key: inputs[key] for key in CAPTION_FIELDS if key in inputs}
    pool['product_index'] = inputs['product_index']
    for key in ('subcategory_labels', 'category_labels'):
        if key in inputs:
            pool[key] = inputs[key]
    text = inputs['input_ids']
    if 'mlm_positions' in inputs:
        text = unmask_input_ids(text, inputs['mlm_positions'],
                                inputs['mlm_labels'])
    pool['unmasked_ids'] = text
    rank, world = get_dist_info()
    offset = 0
    if across_ranks and world > 1:
        pool = {key: _gather(value) for key, value in pool.items()}
        offset = rank * inputs['input_ids'].shape[0]
    pool['caption_id'] = caption_identity(
        pool.pop('unmasked_ids'), pool['attention_mask'],
        pool.get('caption_key'))
    return pool, offset


def paired_batch(inputs: Dict[str, torch.Tensor], pairs: ITMPairs,
                 pool: Optional[Dict[str, torch.Tensor]]
                 ) -> Dict[str, torch.Tensor]:
    """The batch re-arranged into the pairs' rows (matched pairs first).

    Args:
        inputs (dict): The B-row training batch.
        pairs (ITMPairs): From a negative sampler.
        pool (dict, optional): Candidate captions (:func:`candidate_pool`);
            None: the batch's own captions.

    Returns:
        dict: P rows: image fields by ``image_index``, caption fields by
        ``text_index``, plus ``itm_labels``, ``num_matched``,
        ``image_index`` and ``text_index``.
    """
    captions = pool if pool is not None else inputs
    out = {
        key: value
        for key, value in inputs.items()
        if key not in IMAGE_FIELDS and key not in CAPTION_FIELDS
    }
    img, txt = pairs.image_index, pairs.text_index
    for key in IMAGE_FIELDS:
        if key in inputs:
            out[key] = inputs[key][img]
    for key in CAPTION_FIELDS:
        if key in captions:
            out[key] = captions[key][txt]
    out.update(
        itm_labels=pairs.labels,
        num_matched=pairs.num_matched,
        image_index=img,
        text_index=txt)
    return out
