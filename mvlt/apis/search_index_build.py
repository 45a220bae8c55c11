"""Building a catalogue-search index: a gallery's ITC embeddings in faiss,
its product table and thumbnails, tied to one checkpoint and one gallery
(the folder layout: :mod:`mvlt.apis.search_index_layout`).

Run by ``tools/misc/build_search_index.py``; the index is opened by
:class:`mvlt.apis.SearchIndex`. The embeddings come from
:class:`MVLTInferencer` (the model's scoring API); faiss only stores them
and finds nearest neighbours (inner product of L2-normalised vectors =
cosine similarity, as :func:`mvlt.models.utils.itc_similarity`).
"""
import os
import os.path as osp
import re
import shutil
import time
from typing import TYPE_CHECKING, Dict, List, Optional

import numpy as np

from mvlt.version import __version__
from .ann_files import write_ann
from .ann_index import DEFAULT_TARGET_RECALL
from .embed_shards import (DEFAULT_SHARD_SIZE, embed_in_shards, prepare_plan,
                           read_shard)
from .gallery import Gallery, file_sha256
from .item_store import ITEMS_DB, PACK_DIR
from .item_store_writer import write_item_store
from .ranking_choice import DEFAULT_QUERIES, measure_ranking
from .search_index_layout import (CAPTION_INDEX, CAPTIONS_FILE, CONFIG_FILE,
                                  IMAGE_INDEX, INDEX_FORMAT, ITEMS_FILE,
                                  META_FILE, THUMB_DIR, ProgressFn, write_meta)

#: Files an update writes (mvlt/apis/search_index_update.py).
UPDATED_FILE = re.compile(r'^(items|images|captions)\.g\d+\.')

if TYPE_CHECKING:  # the inferencer needs torch; ONNX serving does not
    from .inferencer import MVLTInferencer


def build_search_index(inferencer: 'MVLTInferencer',
                       gallery: Gallery,
                       out_dir: str,
                       config_source: str,
                       config_options: Optional[dict] = None,
                       exact_itm: bool = False,
                       chunk_size: int = 64,
                       thumb_size: int = 128,
                       progress: Optional[ProgressFn] = None,
                       index: str = 'auto',
                       memory_budget_mb: Optional[float] = None,
                       target_recall: float = DEFAULT_TARGET_RECALL,
                       rank_queries: int = DEFAULT_QUERIES,
                       shard_size: int = DEFAULT_SHARD_SIZE,
                       rank: int = 0,
                       world_size: int = 1) -> Optional[dict]:
    """Embed a gallery and write a search index folder.

    Args:
        inferencer: The model (config + checkpoint) to embed with: an
            :class:`MVLTInferencer`, or a :class:`mvlt.deploy.OnnxInferencer`
            (then its ``cfg`` is the config written into the index).
        gallery: The products (:func:`mvlt.apis.gallery.open_gallery`).
        out_dir: The index folder (created; files of an older index in it
            are replaced).
        config_source: The config path as given, recorded for the rebuild
            command.
        config_options: The ``--cfg-options`` it was loaded with (likewise).
        exact_itm: Build without embeddings (a model without an ITC head):
            every query is then scored by ITM against the whole gallery.
        chunk_size: Images decoded and embedded at a time.
        thumb_size: Longer side of the thumbnails (px).
        progress: Called with (images done, total) after every chunk.
        index: faiss index factory string of the image table, or ``'auto'``
            (exact below 50K items, IVF-PQ with a refine stage above:
            :mod:`mvlt.apis.ann_index`). The caption table is ``'auto'``.
        memory_budget_mb: MiB each table's faiss index may hold.
        target_recall: recall@10 against exact search, on held-out queries
            (the other modality), that the search parameters are raised to;
            the measured figure goes into ``meta['ann']``.
        rank_queries: Held-out captions on which ITC, ITC + ITM and fused
            ranking are compared (``meta['ranking']``, the page's default;
            :mod:`mvlt.apis.ranking_choice`); 0: not measured.
        shard_size: Rows embedded and written at a time; a killed build
            resumes after its last finished shard
            (:mod:`mvlt.apis.embed_shards`).
        rank / world_size: This process's share of the shards when several
            build one index; only process 0 writes the index (the others
            return None).

    Returns:
        dict | None: The index's meta data (also in ``meta.json``); None on
        a process other than 0.

    Raises:
        KeyError: The model has no ITC head and ``exact_itm`` is False.
    """
    # Needs torch (mvlt.visualization); serving an index does not.
    from mvlt.visualization import encode_rgb_image
    if not inferencer.checkpoint:
        raise ValueError('build_search_index needs an inferencer with a '
                         'checkpoint: the index records its content hash.')
    if not exact_itm and not inferencer.has_itc:
        raise KeyError('The model has no ITC head (model.heads.itc in the '
                       'config and the checkpoint); build with exact_itm=True'
                       ' for exact ITM scoring instead.')
    start = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):  # an older index's, updates' too
        if name in (META_FILE, IMAGE_INDEX, CAPTION_INDEX, CAPTIONS_FILE,
                    ITEMS_FILE, ITEMS_DB, 'images.npy', 'captions.npy') or \
                UPDATED_FILE.match(name):
            os.remove(osp.join(out_dir, name))
    checkpoint_sha = file_sha256(inferencer.checkpoint)
    gallery_sha = gallery.content_hash()
    prepare_plan(
        out_dir,
        dict(
            checkpoint=checkpoint_sha,
            gallery=gallery_sha,
            num_items=len(gallery),
            shard_size=shard_size,
            chunk_size=chunk_size,
            thumb_size=thumb_size,
            exact_itm=exact_itm,
            format=INDEX_FORMAT), THUMB_DIR, rank, wait_s=3600)
    inferencer.cfg.dump(osp.join(out_dir, CONFIG_FILE))

    def embed_rows(rows: range) -> tuple:
        embeds, items, thumbs = [], [], []
        for first in range(rows.start, rows.stop, chunk_size):
            chunk = range(first, min(first + chunk_size, rows.stop))
            images = gallery.read_many(chunk)
            for row, image in zip(chunk, images):
                thumbs.append(
                    encode_rgb_image(image, '.jpg', thumb_size, 90))
                items.append(dict(row=row, **gallery.rows[row]))
            if not exact_itm:
                embeds.append(inferencer.embed_images(images))
        return (np.concatenate(embeds) if embeds else None), items, thumbs

    total = len(gallery)
    shards = embed_in_shards(out_dir, total, shard_size, embed_rows, rank,
                             world_size, progress)
    if shards is None:  # another process assembles the index
        return None
    embeds, items = [], []

    def shard_rows():
        for path in shards:
            shard_embeds, shard_items, thumbs = read_shard(path)
            if shard_embeds is not None:
                embeds.append(shard_embeds)
            items.extend(shard_items)
            yield from zip(shard_items, thumbs)

    # Packs of an older index (and of its updates) are written anew.
    shutil.rmtree(osp.join(out_dir, PACK_DIR), ignore_errors=True)
    store = write_item_store(out_dir, shard_rows())
    embeds = np.concatenate(embeds) if embeds else None

    embed_dim, ann, ranking = None, None, None
    if not exact_itm:
        image_embeds = embeds
        embed_dim = int(image_embeds.shape[1])
        captions: Dict[str, List[int]] = {}
        for item in items:
            captions.setdefault(item['caption'], []).append(item['row'])
        texts = list(captions)
        caption_embeds = np.concatenate([
            inferencer.embed_captions(texts[i:i + chunk_size])
            for i in range(0, len(texts), chunk_size)
        ])
        budget = int(memory_budget_mb * 2**20) if memory_budget_mb else None
        ann = dict(
            images=write_ann(out_dir, IMAGE_INDEX.split('.')[0], image_embeds,
                             caption_embeds, index, budget, target_recall),
            captions=write_ann(out_dir, CAPTION_INDEX.split('.')[0],
                               caption_embeds, image_embeds, 'auto', budget,
                               target_recall))
        ranking = measure_ranking(inferencer, gallery, items, image_embeds,
                                  rank_queries)

    seconds = time.perf_counter() - start
    meta = dict(
        format=INDEX_FORMAT,
        mode='exact-itm' if exact_itm else 'itc',
        num_items=total,
        embed_dim=embed_dim,
        store=store,
        ann=ann,
        ranking=ranking,
        build=dict(
            index=None if index == 'auto' else index,
            memory_budget_mb=memory_budget_mb,
            target_recall=None if target_recall == DEFAULT_TARGET_RECALL else
            target_recall),
        batch_size=inferencer.batch_size,
        config=dict(
            source=config_source,
            options=dict(config_options or {}),
            file=CONFIG_FILE,
            cwd=os.getcwd()),
        checkpoint=dict(
            path=osp.abspath(inferencer.checkpoint), sha256=checkpoint_sha),
        gallery=dict(**gallery.spec, sha256=gallery_sha),
        # The catalogue served: the gallery's hash, chained over updates
        # (mvlt/apis/search_index_update.py).
        catalogue_sha256=gallery_sha,
        thumb_size=thumb_size,
        build_seconds=round(seconds, 3),
        images_per_second=round(total / max(seconds, 1e-9), 2),
        backend=getattr(inferencer, 'backend', 'pytorch'),
        onnx_dir=getattr(inferencer, 'export_dir', None),
        mvlt_version=__version__,
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
    write_meta(out_dir, meta)
    return meta


def estimate_exact_itm_seconds(inferencer: 'MVLTInferencer',
                               gallery: Gallery) -> float:
    """Seconds one text query would take with exact ITM scoring of every
    gallery image, from one timed batch of pairs (reading included).

    Raises:
        KeyError: The model has no ITM head.
    """
    rows = list(range(min(inferencer.batch_size, len(gallery))))
    captions = [gallery.rows[0]['caption']] * len(rows)
    inferencer.score(gallery.read_many(rows[:1]), captions[:1])  # warm-up
    start = time.perf_counter()
    inferencer.score(gallery.read_many(rows), captions)
    per_pair = (time.perf_counter() - start) / len(rows)
    return per_pair * len(gallery)
