"""Retrieval work split across processes, and its results gathered.

Every function is called by all ranks in lockstep with the same arguments
and returns the same result on every rank, whatever the number of
processes (the scoring is bitwise independent of the split, see
:mod:`.retrieval_scoring`).
"""
from typing import Callable, List, Tuple

import numpy as np
import torch
from mmengine.dist import (all_gather, all_gather_object, all_reduce,
                           get_dist_info)

from mvlt.evaluation.metrics.retrieval import (best_positive_scores,
                                               count_beaten, positive_ranks)
from mvlt.models.utils import paired_itc_similarity, rank_order
from .retrieval_scoring import Group, RetrievalScorer

#: ``announce(total, what)``: a progress bar for ``total`` units of work of
#: this process, described by ``what``.
Announce = Callable[[int, str], None]


def shard(weights: np.ndarray, rank: int, world: int) -> slice:
    """Contiguous range of items for ``rank`` with balanced total weight.

    Args:
        weights (np.ndarray): (N,) cost of each item.
        rank, world (int): This process and the number of processes.
    """
    if len(weights) == 0:
        return slice(0, 0)
    cumulative = np.concatenate([[0], np.cumsum(weights)])
    total = cumulative[-1]
    start = int(np.searchsorted(cumulative, total * rank / world, 'left'))
    stop = int(np.searchsorted(cumulative, total * (rank + 1) / world, 'left'))
    if rank == world - 1:
        stop = len(weights)
    return slice(min(start, len(weights)), min(stop, len(weights)))


def score_pairs(pairs: np.ndarray, scorer: RetrievalScorer,
                announce: Announce) -> np.ndarray:
    """ITM scores of (caption row, image row) pairs.

    Pairs are grouped by image (each image is decoded once) and the images
    shared out by their number of pairs.

    Args:
        pairs (np.ndarray): (P, 2) int (caption row, image row).

    Returns:
        np.ndarray: (P,) float32, on every rank.
    """
    if len(pairs) == 0:
        return np.zeros(0, np.float32)
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))
    ordered = pairs[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:, 1] != ordered[:-1, 1]])
    stops = np.r_[starts[1:], len(ordered)]
    rank, world = get_dist_info()
    share = shard(stops - starts, rank, world)
    groups: List[Group] = [(int(ordered[s, 1]), ordered[s:e, 0])
                           for s, e in zip(starts[share], stops[share])]
    announce(
        sum(len(c) for _, c in groups),
        f'scoring {len(pairs)} image-caption pairs with ITM '
        f'({world} process(es))')
    local = scorer.score_groups(groups)
    local = np.concatenate(local) if local else np.zeros(0, np.float32)
    gathered = np.concatenate(all_gather_object(local))
    scores = np.empty(len(pairs), np.float32)
    scores[order] = gathered
    return scores


def embed(caption_rows: np.ndarray, image_rows: np.ndarray,
          scorer: RetrievalScorer,
          announce: Announce) -> Tuple[np.ndarray, np.ndarray]:
    """ITC embeddings (N, D) of caption rows and of image rows."""
    rank, world = get_dist_info()
    cap_share = shard(np.ones(len(caption_rows)), rank, world)
    img_share = shard(np.ones(len(image_rows)), rank, world)
    announce(
        len(caption_rows[cap_share]) + len(image_rows[img_share]),
        f'ITC embeddings of {len(caption_rows)} captions and '
        f'{len(image_rows)} images')
    local = (scorer.embed_captions(caption_rows[cap_share]),
             scorer.embed_images(image_rows[img_share]))
    parts = all_gather_object(local)
    captions = np.concatenate([p[0] for p in parts if len(p[0])])
    images = np.concatenate([p[1] for p in parts if len(p[1])])
    return captions, images


def candidate_similarities(tasks: list, scorer: RetrievalScorer,
                           announce: Announce) -> List[np.ndarray]:
    """ITC similarity of every (query, candidate) pair of candidate-list
    tasks: each caption and image embedded once (:func:`embed`), then
    :func:`mvlt.models.utils.paired_itc_similarity`.

    Returns:
        list[np.ndarray]: Per task, float32 of its ``candidate_rows`` shape.
    """
    pairs = np.concatenate([task.pairs() for task in tasks])
    caption_rows, image_rows = np.unique(pairs[:, 0]), np.unique(pairs[:, 1])
    cap_emb, img_emb = embed(caption_rows, image_rows, scorer, announce)
    cap_index = {r: i for i, r in enumerate(caption_rows.tolist())}
    img_index = {r: i for i, r in enumerate(image_rows.tolist())}
    sims = []
    for task in tasks:
        pairs = task.pairs()
        sim = paired_itc_similarity(
            cap_emb[[cap_index[r] for r in pairs[:, 0].tolist()]],
            img_emb[[img_index[r] for r in pairs[:, 1].tolist()]])
        sims.append(sim.reshape(task.candidate_rows.shape))
    return sims


class DenseRanking:
    """Ranks of a caption x image score matrix whose image columns are
    split across processes, without gathering the matrix.

    Args:
        caption_rows (np.ndarray): (Nc,) caption rows (matrix rows).
        image_rows (np.ndarray): (Ni,) image rows (matrix columns).
        share (slice): The columns this process scored.
        scores (np.ndarray): (Nc, len(share)) this process's columns.
        positives (np.ndarray): (Nc, len(share)) bool.
        k (int): Best candidates kept per query.

    Each ranking method returns ``(ranks, positive_rows, topk_rows,
    topk_scores)``: the 1-based rank and row of each query's best positive,
    and the rows and scores of its ``k`` best candidates.
    """

    def __init__(self, caption_rows: np.ndarray, image_rows: np.ndarray,
                 share: slice, scores: np.ndarray, positives: np.ndarray,
                 k: int) -> None:
        self.caption_rows = caption_rows
        self.image_rows = image_rows
        self.scores = scores
        self.positives = positives
        self.columns = np.arange(share.start, share.start + scores.shape[1])
        self.k = k

    def text_to_image(self) -> tuple:
        """Caption queries: their candidates lie on every rank; the best
        positive score is reduced with max, then the negatives at or above
        it with sum (:func:`best_positive_scores`, :func:`count_beaten`)."""
        scores, positives = self.scores, self.positives
        num, gallery = len(self.caption_rows), len(self.image_rows)
        best = torch.from_numpy(best_positive_scores(scores, positives))
        all_reduce(best, op='max')
        best = best.numpy()
        if np.isneginf(best).any():
            row = int(self.caption_rows[np.isneginf(best).argmax()])
            raise ValueError(f'Full-gallery retrieval: caption row {row} has '
                             'no image of its product in the gallery.')
        count = torch.from_numpy(count_beaten(scores, positives, best))
        all_reduce(count, op='sum')
        # The best positive's column (for display): the lowest global column
        # holding the best score.
        hit = np.where(positives & (scores == best[:, None]),
                       self.columns[None, :], gallery)
        best_col = torch.from_numpy((hit.min(axis=1) if scores.shape[1] else
                                     np.full(num, gallery)).astype(np.int64))
        all_reduce(best_col, op='min')
        # Top-k per rank, merged by the tie rule of the ranks
        # (:func:`rank_order`): concatenated in column order, a stable sort
        # on (score, positive) keeps columns ascending among equal keys.
        top_val, top_col, top_pos = self._local_topk()
        vals = torch.cat(all_gather(torch.from_numpy(top_val)), dim=1)
        idx = torch.cat(all_gather(torch.from_numpy(top_col)), dim=1)
        pos = torch.cat(all_gather(torch.from_numpy(top_pos)), dim=1)
        merged = rank_order(vals.numpy(), k=self.k, positives=pos.numpy())
        top_val = np.take_along_axis(vals.numpy(), merged, 1)
        top_col = np.take_along_axis(idx.numpy(), merged, 1)
        return (1 + count.numpy(), self.image_rows[best_col.numpy()],
                self.image_rows[top_col], top_val)

    def image_to_text(self) -> tuple:
        """Image queries: each rank holds whole columns; ranks and top-k are
        computed locally and summed into full-size arrays."""
        scores, positives = self.scores.T, self.positives.T
        num, k = len(self.image_rows), self.k
        ranks = np.zeros(num, np.int64)
        best_row = np.zeros(num, np.int64)
        top_val = np.zeros((num, k), np.float64)
        top_idx = np.zeros((num, k), np.int64)
        if scores.shape[0]:
            local = slice(self.columns[0], self.columns[0] + scores.shape[0])
            ranks[local] = positive_ranks(scores, positives)
            masked = np.where(positives, scores, -np.inf)
            best_row[local] = masked.argmax(axis=1)
            order = rank_order(scores, k=k, positives=positives)
            top_idx[local] = order
            top_val[local] = np.take_along_axis(scores, order, axis=1)
        tensors = [
            torch.from_numpy(a) for a in (ranks, best_row, top_val, top_idx)
        ]
        for tensor in tensors:
            all_reduce(tensor, op='sum')
        ranks, best_row, top_val, top_idx = (t.numpy() for t in tensors)
        return (ranks, self.caption_rows[best_row], self.caption_rows[top_idx],
                top_val)

    def _local_topk(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This process's top k per query: scores (-inf padded), global
        columns and whether each is positive."""
        scores = self.scores
        values = np.full((scores.shape[0], self.k), -np.inf, np.float64)
        index = np.zeros((scores.shape[0], self.k), np.int64)
        positive = np.zeros((scores.shape[0], self.k), np.int64)
        if scores.shape[1]:
            order = rank_order(scores, k=self.k, positives=self.positives)
            take = order.shape[1]
            values[:, :take] = np.take_along_axis(scores, order, axis=1)
            index[:, :take] = self.columns[order]
            positive[:, :take] = np.take_along_axis(self.positives, order, 1)
        return values, index, positive
