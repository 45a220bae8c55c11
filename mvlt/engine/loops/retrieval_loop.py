"""The retrieval test loop: TIR / ITR by ITM scores, on candidate lists or
on the full gallery, exactly or by ITC top-k re-ranking."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner.amp import autocast
from mmengine.runner.base_loop import BaseLoop
from torch.utils.data import DataLoader

from mvlt.datasets.retrieval_protocol import (DIRECTIONS, CandidateProtocol,
                                              GalleryProtocol,
                                              build_gallery_protocol,
                                              caption_image_pairs,
                                              check_identical_captions,
                                              dataset_rows,
                                              load_candidate_protocol)
from mvlt.models.utils import (Ranking, itc_similarity, rank_candidates,
                               topk_candidates)
from mvlt.registry import LOOPS
from . import retrieval_dist as dist
from .retrieval_records import gallery_records, ranked_records
from .retrieval_scoring import RetrievalScorer
from .utils import (RankZeroProgress, build_test_evaluator, check_model_heads,
                    checkpoint_has_heads, unwrap_model)


@LOOPS.register_module()
class RetrievalTestLoop(BaseLoop):
    """Text->image (TIR) and image->text (ITR) retrieval by ITM scores.

    Every query is ranked against its candidates by the ITM matching
    probability (paper section 3.3; or by ITC, see the modes); ties count
    against the positive
    (:func:`mvlt.evaluation.positive_ranks`). A candidate whose caption is
    identical to the query's positive caption after the model tokenizer's
    normalisation counts as a positive (``identical_captions``,
    :meth:`ProtocolRows.matches`). Scores come from the model's
    scoring API (:meth:`MVLT.score_pairs`, :meth:`MVLT.embed_images`,
    :meth:`MVLT.embed_texts`: only the encoder and the ITM / ITC heads run)
    through :class:`RetrievalScorer` (captions tokenised once; each image
    decoded once per scoring pass and reused for all its pairings); this
    loop shares the work out and gathers it (:mod:`.retrieval_dist`) and
    hands one record per query to the metric (:mod:`.retrieval_records`).

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
      re-scores and ranks above the rest (those keep their ITC order;
      :func:`mvlt.models.utils.rank_candidates`). With
      ``rerank_k`` >= the number of candidates this is the exact mode.
    * ``'itc'``: ITC similarity alone (CLIP-style ranking, no ITM pass;
      needs the ``itc`` head).

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
        mode (str): ``'exact'``, ``'rerank'``, ``'itc'`` or ``'auto'``:
            re-rank when the model and its checkpoint have an ITC head,
            else exact.
        rerank_k (int): Candidates per query that ITM re-scores.
        pair_batch_size (int): Pairs per ITM forward pass.
        embed_batch_size (int): Items per ITC forward pass.
        fp16 (bool): Run the model under autocast.
        keep_topk (int): Best candidates kept per query for visualisation.
        query_chunk (int): Queries ranked at a time in full-gallery
            re-ranking (bounds the memory of the similarity rows).
        show_progress (bool): Progress bar on rank 0.
        identical_captions (str): ``'positive'``: a caption identical to the
            positive's (another product; compared as
            ``model.data_preprocessor.tokenizer`` normalises it) is a
            positive, so its tie is not a miss; ``'negative'``: the naive
            protocol, for comparison with published numbers.
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
                 show_progress: bool = True,
                 identical_captions: str = 'positive') -> None:
        if protocol not in ('candidates', 'full_gallery'):
            raise ValueError("RetrievalTestLoop: protocol must be "
                             f"'candidates' or 'full_gallery', got "
                             f'{protocol!r}.')
        if protocol == 'candidates' and not protocol_file:
            raise ValueError("RetrievalTestLoop: protocol='candidates' needs "
                             'test_cfg.protocol_file (make it with '
                             'tools/misc/make_retrieval_protocol.py).')
        if mode not in ('exact', 'rerank', 'itc', 'auto'):
            raise ValueError("RetrievalTestLoop: mode must be 'exact', "
                             f"'rerank', 'itc' or 'auto', got {mode!r}.")
        unknown = [d for d in directions if d not in DIRECTIONS]
        if unknown or not directions:
            raise ValueError(f'RetrievalTestLoop: directions must be among '
                             f'{DIRECTIONS}, got {tuple(directions)}.')
        if mode == 'rerank' and rerank_k < 1:
            raise ValueError('RetrievalTestLoop: rerank_k must be >= 1.')
        check_identical_captions(identical_captions, 'RetrievalTestLoop')
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
        self.progress = RankZeroProgress(show_progress)
        self.identical_captions = identical_captions
        self.records: List[dict] = []

    # -------------------------------------------------------------- entry
    def run(self) -> dict:
        """Score, rank, evaluate; returns the metrics."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        model = unwrap_model(self.runner.model)
        if self.mode == 'auto':
            self.mode = 'rerank' if 'itc' in model.heads and \
                checkpoint_has_heads(self.runner, ('itc', )) else 'exact'
            print_log(
                f'Retrieval: {self.mode} mode (mode=auto: the ITC top '
                f'{self.rerank_k} re-ranked by ITM when the checkpoint has '
                'an ITC head).',
                logger='current')
        heads = {
            'exact': ('itm', ),
            'rerank': ('itm', 'itc'),
            'itc': ('itc', )
        }[self.mode]
        check_model_heads(self.runner, model, heads)
        identical = self.identical_captions == 'positive'
        tokenizer = getattr(model.data_preprocessor, 'tokenizer', None)
        if identical and tokenizer is None:
            raise ValueError(
                "RetrievalTestLoop(identical_captions='positive') compares "
                'captions as model.data_preprocessor.tokenizer normalises '
                "them; the model has none (set it, or use 'negative').")
        rows = dataset_rows(self.dataset, tokenizer if identical else None)
        self._rows = rows
        scorer = RetrievalScorer(
            model,
            self.dataset,
            rows.caption,
            pair_batch_size=self.pair_batch_size,
            embed_batch_size=self.embed_batch_size,
            image_batch_size=self.dataloader.batch_size or 32,
            num_workers=self.dataloader.num_workers,
            progress=self.progress.advance)
        with torch.no_grad(), autocast(enabled=self.fp16):
            if self.protocol == 'candidates':
                protocol = load_candidate_protocol(self.protocol_file, rows,
                                                   self.directions, self.split)
                if self.protocol_name:
                    protocol.name = self.protocol_name
                records = self._run_candidates(protocol, scorer)
            else:
                protocol = build_gallery_protocol(
                    rows,
                    name=self.protocol_name or 'full-gallery',
                    split=self.split or 'test',
                    num_queries=self.num_queries,
                    seed=self.query_seed,
                    directions=self.directions)
                records = self._run_gallery(protocol, scorer)
        self.progress.finish()
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

    def _announce_work(self, total: int, what: str) -> None:
        self.progress.start(total, f'Retrieval: {what}')

    def _positives(self, query_rows: np.ndarray, candidate_rows: np.ndarray,
                   direction: str) -> np.ndarray:
        """(Q, C) bool: which candidates match their query."""
        return self._rows.matches(query_rows, candidate_rows, direction,
                                  self.identical_captions)

    def _score(self, pairs: List[np.ndarray],
               scorer: RetrievalScorer) -> List[np.ndarray]:
        """ITM scores of several (P_i, 2) pair lists, each distinct pair
        scored once."""
        everything = np.concatenate(pairs)
        unique, inverse = np.unique(everything, axis=0, return_inverse=True)
        itm = dist.score_pairs(unique, scorer,
                               self._announce_work)[inverse.reshape(-1)]
        return np.split(itm, np.cumsum([len(p) for p in pairs])[:-1])

    # ------------------------------------------------------ candidates
    def _run_candidates(self, protocol: CandidateProtocol,
                        scorer: RetrievalScorer) -> List[dict]:
        tasks = protocol.tasks
        positives = [
            self._positives(task.query_rows, task.candidate_rows,
                            task.direction) for task in tasks
        ]
        if self.mode == 'exact':
            itm = self._score([task.pairs() for task in tasks], scorer)
            rankings = [
                rank_candidates(
                    scores, positives=pos, shape=task.candidate_rows.shape)
                for task, scores, pos in zip(tasks, itm, positives)
            ]
        else:
            rankings = self._rerank_candidates(tasks, positives, scorer)
        records = []
        for task, ranking, pos in zip(tasks, rankings, positives):
            records.extend(
                ranked_records(protocol.name, protocol.split, task.direction,
                               task.query_rows, task.candidate_rows, ranking,
                               pos, self.keep_topk))
        return records

    def _rerank_candidates(self, tasks: list, positives: List[np.ndarray],
                           scorer: RetrievalScorer) -> List[Ranking]:
        """ITC similarity of every query-candidate pair, ITM on the top
        ``rerank_k`` of each list (mode ``'itc'``: no ITM); the shortlists
        of all tasks are scored in one pass."""
        sims = dist.candidate_similarities(tasks, scorer, self._announce_work)
        if self.mode == 'itc':
            return [
                rank_candidates(None, sim, positives=pos)
                for sim, pos in zip(sims, positives)
            ]
        shortlists = [topk_candidates(sim, self.rerank_k) for sim in sims]
        itm = self._score([
            caption_image_pairs(
                task.direction, np.repeat(task.query_rows, shortlist.shape[1]),
                np.take_along_axis(task.candidate_rows, shortlist,
                                   1).reshape(-1))
            for task, shortlist in zip(tasks, shortlists)
        ], scorer)
        return [
            rank_candidates(
                scores, sim, self.rerank_k, positives=pos,
                shortlist=shortlist) for sim, shortlist, scores, pos in zip(
                    sims, shortlists, itm, positives)
        ]

    # ---------------------------------------------------------- gallery
    def _run_gallery(self, protocol: GalleryProtocol,
                     scorer: RetrievalScorer) -> List[dict]:
        if self.mode in ('rerank', 'itc'):
            return self._run_gallery_rerank(protocol, scorer)
        want_t2i = 'text_to_image' in protocol.directions
        want_i2t = 'image_to_text' in protocol.directions
        shared = (
            np.array_equal(protocol.text_query_rows, protocol.caption_rows)
            and np.array_equal(protocol.image_query_rows, protocol.image_rows))
        blocks = []
        if shared:
            blocks.append((protocol.caption_rows, protocol.image_rows,
                           want_t2i, want_i2t))
        else:
            if want_t2i:
                blocks.append((protocol.text_query_rows, protocol.image_rows,
                               True, False))
            if want_i2t:
                blocks.append((protocol.caption_rows,
                               protocol.image_query_rows, False, True))
        records = []
        for block in blocks:
            records += self._dense_block(protocol, scorer, *block)
        order = {d: i for i, d in enumerate(DIRECTIONS)}
        records.sort(key=lambda r: (order[r['direction']], r['query_id']))
        return records

    def _dense_block(self, protocol: GalleryProtocol, scorer: RetrievalScorer,
                     caption_rows: np.ndarray, image_rows: np.ndarray,
                     text_to_image: bool, image_to_text: bool) -> List[dict]:
        """Score captions x images with the images shared out across ranks
        and rank both ways without gathering the score matrix."""
        rank, world = get_dist_info()
        share = dist.shard(np.ones(len(image_rows)), rank, world)
        local_images = image_rows[share]
        self._announce_work(
            len(local_images) * len(caption_rows),
            f'scoring {len(caption_rows)} captions x {len(image_rows)} '
            f'images with ITM ({world} process(es))')
        columns = scorer.score_groups([(int(r), caption_rows)
                                       for r in local_images])
        scores = np.stack(
            columns, axis=1) if columns else np.zeros(
                (len(caption_rows), 0), np.float32)
        k = min(self.keep_topk, len(image_rows), len(caption_rows))
        # Positives of (caption, image) pairs serve both directions.
        ranking = dist.DenseRanking(
            caption_rows, image_rows, share, scores,
            self._positives(caption_rows, local_images, 'text_to_image'), k)
        records = []
        for wanted, direction, queries, rank_direction in (
            (text_to_image, 'text_to_image', caption_rows,
             ranking.text_to_image), (image_to_text, 'image_to_text',
                                      image_rows, ranking.image_to_text)):
            if not wanted:
                continue
            ranks, positive_rows, topk_rows, topk_scores = rank_direction()
            records += gallery_records(
                protocol.name, protocol.split, direction, queries, ranks,
                positive_rows, topk_rows, topk_scores,
                self._positives(queries, topk_rows, direction))
        return records

    def _run_gallery_rerank(self, protocol: GalleryProtocol,
                            scorer: RetrievalScorer) -> List[dict]:
        """ITC top-k of every query over the whole gallery, re-scored by
        ITM (mode ``'itc'``: ITC alone); every rank holds all embeddings.
        Similarities are computed in chunks of queries, so memory stays
        O(chunk x gallery)."""
        cap_emb, img_emb = dist.embed(protocol.caption_rows,
                                      protocol.image_rows, scorer,
                                      self._announce_work)
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
        # Mode 'itc': no shortlist, the ITC similarities are the scores.
        shortlists, itm = [None] * len(tasks), [None] * len(tasks)
        if self.mode == 'rerank':
            shortlists = [
                np.concatenate([
                    topk_candidates(
                        itc_similarity(query_emb[i:i + chunk], gallery_emb),
                        self.rerank_k) for i in range(0, len(queries), chunk)
                ]) for _, queries, _, query_emb, gallery_emb in tasks
            ]
            itm = self._score([
                caption_image_pairs(direction,
                                    np.repeat(queries, shortlist.shape[1]),
                                    gallery[shortlist].reshape(-1))
                for (direction, queries, gallery, _,
                     _), shortlist in zip(tasks, shortlists)
            ], scorer)
        records = []
        for (direction, queries, gallery, query_emb,
             gallery_emb), shortlist, task_itm in zip(tasks, shortlists, itm):
            for i in range(0, len(queries), chunk):
                rows = slice(i, i + chunk)
                positives = self._positives(queries[rows], gallery, direction)
                ranking = rank_candidates(
                    None if shortlist is None else task_itm.reshape(
                        shortlist.shape)[rows],
                    itc_similarity(query_emb[rows], gallery_emb),
                    self.rerank_k,
                    positives=positives,
                    shortlist=None if shortlist is None else shortlist[rows])
                records.extend(
                    ranked_records(
                        protocol.name,
                        protocol.split,
                        direction,
                        queries[rows],
                        gallery,
                        ranking,
                        positives,
                        self.keep_topk,
                        query_offset=i))
        return records
