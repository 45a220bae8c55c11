"""The retrieval test loop: TIR / ITR by ITM scores, on candidate lists or
on the full gallery, exactly or by ITC top-k re-ranking."""
import logging
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import (all_gather, all_gather_object, all_reduce,
                           get_dist_info)
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.amp import autocast
from mmengine.runner.base_loop import BaseLoop
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader

from mvlt.datasets.retrieval_protocol import (DIRECTIONS, CandidateProtocol,
                                              GalleryProtocol, ProtocolRows,
                                              build_gallery_protocol,
                                              dataset_rows,
                                              load_candidate_protocol)
from mvlt.evaluation.metrics.retrieval import positive_ranks
from mvlt.registry import LOOPS
from mvlt.utils.heads_check import check_checkpoint_heads
from .retrieval_scoring import Group, RetrievalScorer


def build_test_evaluator(runner, evaluator) -> Evaluator:
    """Build the loop's evaluator; a missing one is a clear error."""
    if evaluator is None or evaluator == [] or evaluator == {}:
        raise ValueError(
            'The test config has no evaluator: set test_evaluator (e.g. '
            "dict(type='RetrievalMetric'), dict(type='RecognitionMetric') or "
            "dict(type='ReconstructionMetric')).")
    if isinstance(evaluator, (dict, list)):
        return runner.build_evaluator(evaluator)
    return evaluator


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP / MMEngine wrapper."""
    return model.module if is_model_wrapper(model) else model


def check_model_heads(runner, model: torch.nn.Module,
                      heads: Sequence[str]) -> None:
    """The model builds ``heads`` and the checkpoint under test has them."""
    missing = [h for h in heads if h not in model.heads]
    if missing:
        raise KeyError(f'This test needs the model head(s) {missing}, but '
                       f'model.heads builds only {sorted(model.heads)}; add '
                       'them to the config.')
    checkpoint = runner.cfg.get('load_from')
    if checkpoint:
        check_checkpoint_heads(checkpoint, heads)
    else:
        print_log(
            'Testing without a checkpoint (load_from is None): the heads '
            'are randomly initialised.',
            logger='current',
            level=logging.WARNING)


def _shard(weights: np.ndarray, rank: int, world: int) -> slice:
    """Contiguous range of items for ``rank`` with balanced total weight."""
    if len(weights) == 0:
        return slice(0, 0)
    cumulative = np.concatenate([[0], np.cumsum(weights)])
    total = cumulative[-1]
    start = int(np.searchsorted(cumulative, total * rank / world, 'left'))
    stop = int(np.searchsorted(cumulative, total * (rank + 1) / world, 'left'))
    if rank == world - 1:
        stop = len(weights)
    return slice(min(start, len(weights)), min(stop, len(weights)))


@LOOPS.register_module()
class RetrievalTestLoop(BaseLoop):
    """Text->image (TIR) and image->text (ITR) retrieval by ITM scores.

    Every query is ranked against its candidates by the ITM matching
    probability (paper section 3.3); ties count against the positive. Only
    the encoder and the ITM head run (``predict_outputs(tasks=('itm',))``;
    no MLM or MIR work). Captions are tokenised once; each image is decoded
    once per scoring pass and reused for all its pairings.

    Protocols:

    * ``'candidates'``: the candidate lists of ``protocol_file`` (made by
      ``tools/misc/make_retrieval_protocol.py``; Fashion-Gen's 101-candidate
      protocol). The file must have been made for this split.
    * ``'full_gallery'``: every caption against every distinct image and
      every image against every distinct caption (COCO 5K as in ViLT,
      Fashion-Gen's full-gallery protocol), optionally with a seeded subset
      of ``num_queries`` queries.

    Modes:

    * ``'exact'``: ITM scores of every query-candidate pair.
    * ``'rerank'``: ITC embeddings (image-only / text-only passes; needs the
      ``itc`` head) pick each query's top ``rerank_k`` candidates, which ITM
      re-scores and ranks above the rest (those keep their ITC order). With
      ``rerank_k`` >= the number of candidates this is the exact mode.

    Distributed: work is sharded by image across processes (queries of the
    candidate protocol follow their images; the gallery's images for the
    full protocol); scores or per-query rank statistics are gathered, so
    every process ends with the same ranks, and the metric sees each query
    once. Results do not depend on the number of processes.

    Each ranked query reaches the evaluator as a dict (all of them stay in
    :attr:`records` for hooks, e.g. the visualisation hook) with
    ``protocol``, ``split``,
    ``direction``, ``query_id``, ``query_row``, ``rank``, ``positive_row``
    and the ``topk_rows`` / ``topk_scores`` / ``topk_positive`` of the
    ``keep_topk`` best candidates.

    Args:
        runner: The runner.
        dataloader (DataLoader | dict): The test dataloader; its data set,
            ``batch_size`` (images per decoding batch) and ``num_workers``
            are used.
        evaluator (Evaluator | dict | list): ``RetrievalMetric``.
        protocol (str): ``'candidates'`` or ``'full_gallery'``.
        protocol_file (str, optional): File of the candidate protocol.
        protocol_name (str, optional): Label of the reported numbers
            (default: the file's name field, or ``'full-gallery'``).
        split (str, optional): Split label (default: the file's, or
            ``'test'``).
        directions (Sequence[str]): ``'text_to_image'``,
            ``'image_to_text'``.
        num_queries (int, optional): Full gallery: queries per direction
            (seeded subset); None = all.
        query_seed (int): Seed of that subset.
        mode (str): ``'exact'`` or ``'rerank'``.
        rerank_k (int): Candidates per query that ITM re-scores.
        pair_batch_size (int): Pairs per ITM forward pass.
        embed_batch_size (int): Items per ITC forward pass.
        fp16 (bool): Run the model under autocast.
        keep_topk (int): Best candidates kept per query for visualisation.
        query_chunk (int): Queries ranked at a time in full-gallery
            re-ranking (bounds the memory of the similarity rows).
        show_progress (bool): Progress bar on rank 0.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List, None],
                 protocol: str = 'candidates',
                 protocol_file: Optional[str] = None,
                 protocol_name: Optional[str] = None,
                 split: Optional[str] = None,
                 directions: Sequence[str] = DIRECTIONS,
                 num_queries: Optional[int] = None,
                 query_seed: int = 0,
                 mode: str = 'exact',
                 rerank_k: int = 128,
                 pair_batch_size: int = 256,
                 embed_batch_size: int = 64,
                 fp16: bool = False,
                 keep_topk: int = 5,
                 query_chunk: int = 1024,
                 show_progress: bool = True) -> None:
        if protocol not in ('candidates', 'full_gallery'):
            raise ValueError("RetrievalTestLoop: protocol must be "
                             f"'candidates' or 'full_gallery', got "
                             f'{protocol!r}.')
        if protocol == 'candidates' and not protocol_file:
            raise ValueError("RetrievalTestLoop: protocol='candidates' needs "
                             'test_cfg.protocol_file (make it with '
                             'tools/misc/make_retrieval_protocol.py).')
        if mode not in ('exact', 'rerank'):
            raise ValueError("RetrievalTestLoop: mode must be 'exact' or "
                             f"'rerank', got {mode!r}.")
        unknown = [d for d in directions if d not in DIRECTIONS]
        if unknown or not directions:
            raise ValueError(f'RetrievalTestLoop: directions must be among '
                             f'{DIRECTIONS}, got {tuple(directions)}.')
        if mode == 'rerank' and rerank_k < 1:
            raise ValueError('RetrievalTestLoop: rerank_k must be >= 1.')
        super().__init__(runner, dataloader)
        self.evaluator = build_test_evaluator(runner, evaluator)
        self.dataset = self.dataloader.dataset
        if hasattr(self.dataset, 'metainfo'):
            self.evaluator.dataset_meta = self.dataset.metainfo
        self.protocol = protocol
        self.protocol_file = protocol_file
        self.protocol_name = protocol_name
        self.split = split
        self.directions = tuple(directions)
        self.num_queries = num_queries
        self.query_seed = query_seed
        self.mode = mode
        self.rerank_k = int(rerank_k)
        self.pair_batch_size = pair_batch_size
        self.embed_batch_size = embed_batch_size
        self.fp16 = fp16
        self.keep_topk = keep_topk
        self.query_chunk = query_chunk
        self.show_progress = show_progress
        self.records: List[dict] = []

    # -------------------------------------------------------------- entry
    def run(self) -> dict:
        """Score, rank, evaluate; returns the metrics."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        model = unwrap_model(self.runner.model)
        heads = ('itm', ) + (('itc', ) if self.mode == 'rerank' else ())
        check_model_heads(self.runner, model, heads)
        rows = dataset_rows(self.dataset)
        self._rows = rows
        self._bar: Optional[ProgressBar] = None
        scorer = RetrievalScorer(
            model,
            self.dataset,
            rows.caption,
            pair_batch_size=self.pair_batch_size,
            embed_batch_size=self.embed_batch_size,
            image_batch_size=self.dataloader.batch_size or 32,
            num_workers=self.dataloader.num_workers,
            progress=self._advance)
        with torch.no_grad(), autocast(enabled=self.fp16):
            if self.protocol == 'candidates':
                protocol = load_candidate_protocol(self.protocol_file, rows,
                                                   self.directions, self.split)
                if self.protocol_name:
                    protocol.name = self.protocol_name
                records = self._run_candidates(protocol, rows, scorer)
            else:
                protocol = build_gallery_protocol(
                    rows,
                    name=self.protocol_name or 'full-gallery',
                    split=self.split or 'test',
                    num_queries=self.num_queries,
                    seed=self.query_seed,
                    directions=self.directions)
                records = self._run_gallery(protocol, rows, scorer)
        self._finish_bar()
        self.records = records
        rank, world = get_dist_info()
        local = records[rank::world]
        # Equal shares for result collection; duplicates (same query_id)
        # count once in the metric.
        while world > 1 and len(local) < -(-len(records) // world):
            local.append(records[-1])
        self.evaluator.process(data_samples=local, data_batch=None)
        metrics = self.evaluator.evaluate(len(records))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    # ----------------------------------------------------------- progress
    def _start_bar(self, total: int, what: str) -> None:
        self._finish_bar()
        rank, world = get_dist_info()
        if self.show_progress and rank == 0 and total > 0:
            print_log(f'Retrieval: {what}', logger='current')
            self._bar = ProgressBar(total)

    def _advance(self, count: int) -> None:
        if self._bar is not None and count > 0:
            self._bar.update(count)

    def _finish_bar(self) -> None:
        if getattr(self, '_bar', None) is not None:
            self._bar.file.write('\n')
            self._bar = None

    # ------------------------------------------------------ distributed
    def _score_pairs(self, pairs: np.ndarray,
                     scorer: RetrievalScorer) -> np.ndarray:
        """ITM scores of (caption row, image row) pairs, on every rank."""
        if len(pairs) == 0:
            return np.zeros(0, np.float32)
        order = np.lexsort((pairs[:, 0], pairs[:, 1]))
        ordered = pairs[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:, 1] != ordered[:-1, 1]])
        stops = np.r_[starts[1:], len(ordered)]
        rank, world = get_dist_info()
        share = _shard(stops - starts, rank, world)
        groups: List[Group] = [(int(ordered[s, 1]), ordered[s:e, 0])
                               for s, e in zip(starts[share], stops[share])]
        self._start_bar(
            sum(len(c) for _, c in groups),
            f'scoring {len(pairs)} image-caption pairs with ITM '
            f'({world} process(es))')
        local = scorer.score_groups(groups)
        local = np.concatenate(local) if local else np.zeros(0, np.float32)
        gathered = np.concatenate(all_gather_object(local))
        scores = np.empty(len(pairs), np.float32)
        scores[order] = gathered
        return scores

    def _embed(self, caption_rows: np.ndarray, image_rows: np.ndarray,
               scorer: RetrievalScorer) -> Tuple[np.ndarray, np.ndarray]:
        """ITC embeddings of caption and image rows, on every rank."""
        rank, world = get_dist_info()
        cap_share = _shard(np.ones(len(caption_rows)), rank, world)
        img_share = _shard(np.ones(len(image_rows)), rank, world)
        self._start_bar(
            len(caption_rows[cap_share]) + len(image_rows[img_share]),
            f'ITC embeddings of {len(caption_rows)} captions and '
            f'{len(image_rows)} images')
        local = (scorer.embed_captions(caption_rows[cap_share]),
                 scorer.embed_images(image_rows[img_share]))
        parts = all_gather_object(local)
        captions = np.concatenate([p[0] for p in parts if len(p[0])])
        images = np.concatenate([p[1] for p in parts if len(p[1])])
        return captions, images

    # ------------------------------------------------------ candidates
    def _run_candidates(self, protocol: CandidateProtocol, rows: ProtocolRows,
                        scorer: RetrievalScorer) -> List[dict]:
        product = rows.product_index
        tiers: Dict[str, np.ndarray] = {}
        if self.mode == 'exact':
            task_pairs = [task.pairs() for task in protocol.tasks]
        else:
            caption_rows, image_rows = self._candidate_items(protocol)
            cap_emb, img_emb = self._embed(caption_rows, image_rows, scorer)
            cap_index = {r: i for i, r in enumerate(caption_rows.tolist())}
            img_index = {r: i for i, r in enumerate(image_rows.tolist())}
            task_pairs, sims = [], {}
            for task in protocol.tasks:
                pairs = task.pairs()
                sim = np.einsum(
                    'nd,nd->n',
                    cap_emb[[cap_index[r] for r in pairs[:, 0].tolist()]],
                    img_emb[[img_index[r] for r in pairs[:, 1].tolist()]])
                sim = sim.reshape(task.candidate_rows.shape)
                top = self._top_mask(sim)
                sims[task.direction] = sim
                tiers[task.direction] = top.astype(np.int64)
                task_pairs.append(pairs[top.reshape(-1)])
        everything = np.concatenate(task_pairs)
        unique, inverse = np.unique(everything, axis=0, return_inverse=True)
        itm = self._score_pairs(unique, scorer)[inverse.reshape(-1)]
        records, offset = [], 0
        for task, pairs in zip(protocol.tasks, task_pairs):
            task_itm = itm[offset:offset + len(pairs)]
            offset += len(pairs)
            shape = task.candidate_rows.shape
            if self.mode == 'exact':
                scores, tier = task_itm.reshape(shape), None
            else:
                tier = tiers[task.direction]
                scores = sims[task.direction].astype(np.float32)
                scores[tier.astype(bool)] = task_itm
            positives = product[task.candidate_rows] == \
                product[task.query_rows][:, None]
            records.extend(
                self._records(protocol.name, protocol.split, task.direction,
                              task.query_rows, task.candidate_rows, scores,
                              positives, tier))
        return records

    @staticmethod
    def _candidate_items(protocol: CandidateProtocol
                         ) -> Tuple[np.ndarray, np.ndarray]:
        pairs = np.concatenate([task.pairs() for task in protocol.tasks])
        return np.unique(pairs[:, 0]), np.unique(pairs[:, 1])

    @staticmethod
    def _top_index(sim: np.ndarray, k: int) -> np.ndarray:
        """(Q, k) columns of each row's k best similarities (ties resolved
        by column order)."""
        return np.argsort(-sim, axis=1, kind='stable')[:, :k]

    def _top_mask(self, sim: np.ndarray) -> np.ndarray:
        """(Q, C) bool: each row's ``rerank_k`` best ITC similarities."""
        mask = np.zeros(sim.shape, bool)
        top = self._top_index(sim, min(self.rerank_k, sim.shape[1]))
        np.put_along_axis(mask, top, True, axis=1)
        return mask

    # ---------------------------------------------------------- records
    def _records(self,
                 name: str,
                 split: str,
                 direction: str,
                 query_rows: np.ndarray,
                 candidate_rows: np.ndarray,
                 scores: np.ndarray,
                 positives: np.ndarray,
                 tiers: Optional[np.ndarray],
                 query_offset: int = 0) -> List[dict]:
        ranks = positive_ranks(scores, positives, tiers)
        keys = scores.astype(np.float64)
        if tiers is not None:
            keys = keys + 4.0 * tiers  # order only: scores lie in [-1, 1]
        order = np.argsort(-keys, axis=1, kind='stable')[:, :self.keep_topk]
        records = []
        for q in range(len(query_rows)):
            cand = candidate_rows if candidate_rows.ndim == 1 else \
                candidate_rows[q]
            best = np.flatnonzero(positives[q])
            best = best[np.argmax(keys[q, best])]
            records.append(
                dict(
                    protocol=name,
                    split=split,
                    direction=direction,
                    query_id=query_offset + q,
                    query_row=int(query_rows[q]),
                    rank=int(ranks[q]),
                    positive_row=int(cand[best]),
                    topk_rows=cand[order[q]].tolist(),
                    topk_scores=scores[q, order[q]].tolist(),
                    topk_positive=positives[q, order[q]].tolist()))
        return records

    # ---------------------------------------------------------- gallery
    def _run_gallery(self, protocol: GalleryProtocol, rows: ProtocolRows,
                     scorer: RetrievalScorer) -> List[dict]:
        if self.mode == 'rerank':
            return self._run_gallery_rerank(protocol, rows, scorer)
        want_t2i = 'text_to_image' in protocol.directions
        want_i2t = 'image_to_text' in protocol.directions
        shared = (
            np.array_equal(protocol.text_query_rows, protocol.caption_rows)
            and np.array_equal(protocol.image_query_rows, protocol.image_rows))
        records = []
        if shared:
            records += self._dense_block(protocol, rows, scorer,
                                         protocol.caption_rows,
                                         protocol.image_rows, want_t2i,
                                         want_i2t)
        else:
            if want_t2i:
                records += self._dense_block(protocol, rows, scorer,
                                             protocol.text_query_rows,
                                             protocol.image_rows, True, False)
            if want_i2t:
                records += self._dense_block(protocol, rows, scorer,
                                             protocol.caption_rows,
                                             protocol.image_query_rows, False,
                                             True)
        order = {d: i for i, d in enumerate(DIRECTIONS)}
        records.sort(key=lambda r: (order[r['direction']], r['query_id']))
        return records

    def _dense_block(self, protocol: GalleryProtocol, rows: ProtocolRows,
                     scorer: RetrievalScorer, caption_rows: np.ndarray,
                     image_rows: np.ndarray, text_to_image: bool,
                     image_to_text: bool) -> List[dict]:
        """Score captions x images with the images sharded across ranks and
        rank both ways without gathering the score matrix."""
        rank, world = get_dist_info()
        share = _shard(np.ones(len(image_rows)), rank, world)
        local_images = image_rows[share]
        self._start_bar(
            len(local_images) * len(caption_rows),
            f'scoring {len(caption_rows)} captions x {len(image_rows)} '
            f'images with ITM ({world} process(es))')
        groups = [(int(r), caption_rows) for r in local_images]
        columns = scorer.score_groups(groups)
        scores = np.stack(
            columns, axis=1) if columns else np.zeros(
                (len(caption_rows), 0), np.float32)
        product = rows.product_index
        positives = product[caption_rows][:, None] == \
            product[local_images][None, :]
        k = min(self.keep_topk, len(image_rows), len(caption_rows))
        records = []
        if text_to_image:
            records += self._t2i_from_columns(protocol, caption_rows,
                                              image_rows, share, scores,
                                              positives, k)
        if image_to_text:
            records += self._i2t_from_columns(protocol, caption_rows,
                                              image_rows, share, scores,
                                              positives, k)
        return records

    def _t2i_from_columns(self, protocol: GalleryProtocol,
                          caption_rows: np.ndarray, image_rows: np.ndarray,
                          share: slice, scores: np.ndarray,
                          positives: np.ndarray, k: int) -> List[dict]:
        """Caption queries: their columns lie on every rank; reduce the best
        positive score (max) and the count of negatives at or above it
        (sum)."""
        num = len(caption_rows)
        pos_scores = np.where(positives, scores, -np.inf)
        best = pos_scores.max(
            axis=1) if scores.shape[1] else np.full(num, -np.inf)
        best = torch.from_numpy(best.astype(np.float64))
        all_reduce(best, op='max')
        best = best.numpy()
        if np.isneginf(best).any():
            row = int(caption_rows[np.isneginf(best).argmax()])
            raise ValueError(f'Full-gallery retrieval: caption row {row} has '
                             'no image of its product in the gallery.')
        beaten = (scores >= best[:, None]) & ~positives
        count = torch.from_numpy(beaten.sum(axis=1).astype(np.int64))
        all_reduce(count, op='sum')
        # Best positive's column (for display): the lowest global column
        # holding the best score.
        cols = np.arange(share.start, share.start + scores.shape[1])
        hit = np.where((pos_scores == best[:, None]) & positives,
                       cols[None, :], len(image_rows))
        best_col = torch.from_numpy(
            (hit.min(axis=1) if scores.shape[1] else np.full(
                num, len(image_rows))).astype(np.int64))
        all_reduce(best_col, op='min')
        # Top-k per rank, merged.
        top_val, top_col = self._local_topk(scores, cols, k)
        vals = torch.cat(all_gather(torch.from_numpy(top_val)), dim=1)
        idx = torch.cat(all_gather(torch.from_numpy(top_col)), dim=1)
        merged = torch.sort(vals, dim=1, descending=True, stable=True)
        top_val = merged.values[:, :k].numpy()
        top_col = idx.gather(1, merged.indices[:, :k]).numpy()
        return self._gallery_records(protocol, 'text_to_image', caption_rows,
                                     1 + count.numpy(),
                                     image_rows[best_col.numpy()],
                                     image_rows[top_col], top_val)

    def _i2t_from_columns(self, protocol: GalleryProtocol,
                          caption_rows: np.ndarray, image_rows: np.ndarray,
                          share: slice, scores: np.ndarray,
                          positives: np.ndarray, k: int) -> List[dict]:
        """Image queries: each rank holds whole columns; ranks and top-k are
        computed locally and summed into full-size arrays."""
        num = len(image_rows)
        ranks = np.zeros(num, np.int64)
        best_row = np.zeros(num, np.int64)
        top_val = np.zeros((num, k), np.float64)
        top_idx = np.zeros((num, k), np.int64)
        if scores.shape[1]:
            local = slice(share.start, share.start + scores.shape[1])
            ranks[local] = positive_ranks(scores.T, positives.T)
            masked = np.where(positives.T, scores.T, -np.inf)
            best_row[local] = masked.argmax(axis=1)
            order = np.argsort(-scores.T, axis=1, kind='stable')[:, :k]
            top_idx[local] = order
            top_val[local] = np.take_along_axis(scores.T, order, axis=1)
        tensors = [
            torch.from_numpy(a) for a in (ranks, best_row, top_val, top_idx)
        ]
        for tensor in tensors:
            all_reduce(tensor, op='sum')
        ranks, best_row, top_val, top_idx = (t.numpy() for t in tensors)
        return self._gallery_records(protocol, 'image_to_text', image_rows,
                                     ranks, caption_rows[best_row],
                                     caption_rows[top_idx], top_val)

    def _gallery_records(self, protocol: GalleryProtocol, direction: str,
                         query_rows: np.ndarray, ranks: np.ndarray,
                         positive_rows: np.ndarray, topk_rows: np.ndarray,
                         topk_scores: np.ndarray) -> List[dict]:
        """One record per query of a full-gallery direction.

        Args:
            query_rows (np.ndarray): (Q,) data-set rows of the queries.
            ranks (np.ndarray): (Q,) 1-based rank of the best positive.
            positive_rows (np.ndarray): (Q,) row of that positive.
            topk_rows (np.ndarray): (Q, k) rows of the top candidates.
            topk_scores (np.ndarray): (Q, k) their scores.
        """
        product = self._rows.product_index
        return [
            dict(
                protocol=protocol.name,
                split=protocol.split,
                direction=direction,
                query_id=q,
                query_row=int(query_rows[q]),
                rank=int(ranks[q]),
                positive_row=int(positive_rows[q]),
                topk_rows=topk_rows[q].tolist(),
                topk_scores=topk_scores[q].tolist(),
                topk_positive=(
                    product[topk_rows[q]] == product[query_rows[q]]).tolist())
            for q in range(len(query_rows))
        ]

    @staticmethod
    def _local_topk(scores: np.ndarray, cols: np.ndarray,
                    k: int) -> Tuple[np.ndarray, np.ndarray]:
        num = scores.shape[0]
        values = np.full((num, k), -np.inf, np.float64)
        index = np.zeros((num, k), np.int64)
        if scores.shape[1]:
            take = min(k, scores.shape[1])
            order = np.argsort(-scores, axis=1, kind='stable')[:, :take]
            values[:, :take] = np.take_along_axis(scores, order, axis=1)
            index[:, :take] = cols[order]
        return values, index

    def _run_gallery_rerank(self, protocol: GalleryProtocol,
                            rows: ProtocolRows,
                            scorer: RetrievalScorer) -> List[dict]:
        """ITC top-k of every query over the whole gallery, re-scored by
        ITM; every rank holds all embeddings. Similarities are computed in
        chunks of queries, so memory stays O(chunk x gallery)."""
        cap_emb, img_emb = self._embed(protocol.caption_rows,
                                       protocol.image_rows, scorer)
        cap_index = {r: i for i, r in enumerate(protocol.caption_rows)}
        img_index = {r: i for i, r in enumerate(protocol.image_rows)}
        tasks = []
        if 'text_to_image' in protocol.directions:
            queries = protocol.text_query_rows
            tasks.append(('text_to_image', queries, protocol.image_rows,
                          cap_emb[[cap_index[r] for r in queries]], img_emb))
        if 'image_to_text' in protocol.directions:
            queries = protocol.image_query_rows
            tasks.append(('image_to_text', queries, protocol.caption_rows,
                          img_emb[[img_index[r] for r in queries]], cap_emb))
        chunk = self.query_chunk
        tops, task_pairs = [], []
        for direction, queries, gallery, query_emb, gallery_emb in tasks:
            k = min(self.rerank_k, len(gallery))
            top = np.concatenate([
                self._top_index(query_emb[i:i + chunk] @ gallery_emb.T, k)
                for i in range(0, len(queries), chunk)
            ])
            pairs = np.stack([np.repeat(queries, k), gallery[top].reshape(-1)],
                             axis=1)
            if direction == 'image_to_text':
                pairs = pairs[:, ::-1]
            tops.append(top)
            task_pairs.append(pairs)
        everything = np.concatenate(task_pairs)
        unique, inverse = np.unique(everything, axis=0, return_inverse=True)
        itm = self._score_pairs(unique, scorer)[inverse.reshape(-1)]
        records, offset = [], 0
        product = rows.product_index
        for (direction, queries, gallery, query_emb,
             gallery_emb), top in zip(tasks, tops):
            task_itm = itm[offset:offset + top.size].reshape(top.shape)
            offset += top.size
            for i in range(0, len(queries), chunk):
                scores = (query_emb[i:i + chunk] @ gallery_emb.T).astype(
                    np.float32)
                tiers = np.zeros(scores.shape, np.int64)
                np.put_along_axis(
                    scores, top[i:i + chunk], task_itm[i:i + chunk], axis=1)
                np.put_along_axis(tiers, top[i:i + chunk], 1, axis=1)
                positives = product[queries[i:i + chunk]][:, None] == \
                    product[gallery][None]
                records.extend(
                    self._records(
                        protocol.name,
                        protocol.split,
                        direction,
                        queries[i:i + chunk],
                        gallery,
                        scores,
                        positives,
                        tiers,
                        query_offset=i))
        return records
