"""A catalogue-search index: a gallery's ITC embeddings in faiss, its
product table and thumbnails, tied to one checkpoint and one gallery.

Built by :func:`build_search_index` (``tools/misc/build_search_index.py``),
opened by :class:`SearchIndex`, queried by
:class:`mvlt.apis.CatalogueSearch`. The embeddings come from
:class:`MVLTInferencer` (the model's scoring API); faiss only stores them
and finds nearest neighbours (inner product of L2-normalised vectors =
cosine similarity, as :func:`mvlt.models.utils.itc_similarity`).

An index folder holds ``meta.json`` (written last: its presence marks a
complete index), ``config.py`` (the model config it was built with),
``items.jsonl`` (row, product id, caption, category, thumbnail),
``thumbs/``, and with an ITC head ``images.faiss`` / ``captions.faiss``
(exact or approximate nearest-neighbour indexes, :mod:`mvlt.apis.ann_index`;
their factory, search parameters and measured recall@10 are in
``meta['ann']``), ``images.npy`` / ``captions.npy`` (the exact embeddings,
read row by row when served) and ``captions.json`` (distinct captions and
their rows). Without an ITC head
an index can be built for exact ITM scoring only (``mode='exact-itm'``).
"""
import json
import os
import os.path as osp
import shlex
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

import numpy as np

from mvlt.version import __version__
from .ann_files import open_ann, write_ann
from .ann_index import (DEFAULT_TARGET_RECALL, parse_search_params,
                        serve_single_threaded, set_search_params)
from .embed_shards import DEFAULT_SHARD_SIZE, embed_in_shards, prepare_plan
from .gallery import Gallery, file_sha256, gallery_of_rows, open_gallery
from .ranking_choice import DEFAULT_QUERIES, measure_ranking

if TYPE_CHECKING:  # the inferencer needs torch; ONNX serving does not
    from .inferencer import MVLTInferencer

#: Version of the folder layout; an index of another version is refused.
INDEX_FORMAT = 1
META_FILE = 'meta.json'
CONFIG_FILE = 'config.py'
ITEMS_FILE = 'items.jsonl'
CAPTIONS_FILE = 'captions.json'
IMAGE_INDEX = 'images.faiss'
CAPTION_INDEX = 'captions.faiss'
THUMB_DIR = 'thumbs'
MODES = ('itc', 'exact-itm')
#: Who runs the model when serving: the PyTorch model, or its ONNX graphs
#: (tools/deployment/export_onnx.py) with ONNX Runtime, without torch.
BACKENDS = ('pytorch', 'onnxruntime')

ProgressFn = Callable[[int, int], None]


class IndexMismatchError(RuntimeError):
    """An index does not belong to the checkpoint or gallery at hand."""


def rebuild_command(meta: dict, out_dir: str) -> str:
    """The command that builds ``out_dir`` again from the index's sources.
    """
    gallery = meta['gallery']
    words = [
        'python', 'tools/misc/build_search_index.py', meta['config']['source'],
        meta['checkpoint']['path'], '--gallery',
        f"{gallery['kind']}:{gallery['path']}", '--out', out_dir
    ]
    if gallery.get('image_root'):
        words += ['--image-root', gallery['image_root']]
    if gallery.get('exclude'):
        words += ['--on-bad-sample', 'skip']
    if meta['mode'] == 'exact-itm':
        words.append('--exact-itm')
    build = meta.get('build') or {}
    for key, flag in (('index', '--index'), ('memory_budget_mb',
                                             '--memory-budget-mb'),
                      ('target_recall', '--target-recall')):
        if build.get(key) is not None:
            words += [flag, str(build[key])]
    if meta.get('onnx_dir'):
        words += ['--backend', 'onnxruntime', '--onnx', meta['onnx_dir']]
    options = meta['config'].get('options') or {}
    if options:
        words += ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    return ' '.join(shlex.quote(w) for w in words)


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
    from mvlt.visualization import write_rgb_image
    if not inferencer.checkpoint:
        raise ValueError('build_search_index needs an inferencer with a '
                         'checkpoint: the index records its content hash.')
    if not exact_itm and not inferencer.has_itc:
        raise KeyError('The model has no ITC head (model.heads.itc in the '
                       'config and the checkpoint); build with exact_itm=True'
                       ' for exact ITM scoring instead.')
    start = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    for name in (META_FILE, IMAGE_INDEX, CAPTION_INDEX, CAPTIONS_FILE,
                 'images.npy', 'captions.npy'):
        if osp.exists(osp.join(out_dir, name)):
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
            exact_itm=exact_itm), THUMB_DIR, rank, wait_s=3600)
    inferencer.cfg.dump(osp.join(out_dir, CONFIG_FILE))

    def embed_rows(rows: range) -> tuple:
        embeds, items = [], []
        for first in range(rows.start, rows.stop, chunk_size):
            chunk = range(first, min(first + chunk_size, rows.stop))
            images = gallery.read_many(chunk)
            for row, image in zip(chunk, images):
                thumb = f'{THUMB_DIR}/{row:06d}.jpg'
                write_rgb_image(
                    osp.join(out_dir, thumb),
                    image,
                    thumb_size,
                    jpeg_quality=90)
                items.append(
                    dict(row=row, **gallery.rows[row], thumbnail=thumb))
            if not exact_itm:
                embeds.append(inferencer.embed_images(images))
        return (np.concatenate(embeds) if embeds else None), items

    total = len(gallery)
    table = embed_in_shards(out_dir, total, shard_size, embed_rows, rank,
                            world_size, progress)
    if table is None:  # another process assembles the index
        return None
    embeds, items = table
    with open(osp.join(out_dir, ITEMS_FILE), 'w', encoding='utf-8') as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + '\n')

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
        with open(
                osp.join(out_dir, CAPTIONS_FILE), 'w', encoding='utf-8') as f:
            json.dump([dict(caption=c, rows=r) for c, r in captions.items()],
                      f,
                      ensure_ascii=False)

    seconds = time.perf_counter() - start
    meta = dict(
        format=INDEX_FORMAT,
        mode='exact-itm' if exact_itm else 'itc',
        num_items=total,
        embed_dim=embed_dim,
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
        build_seconds=round(seconds, 3),
        images_per_second=round(total / max(seconds, 1e-9), 2),
        backend=getattr(inferencer, 'backend', 'pytorch'),
        onnx_dir=getattr(inferencer, 'export_dir', None),
        mvlt_version=__version__,
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
    with open(osp.join(out_dir, META_FILE), 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
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


class SearchIndex:
    """A search index folder opened for queries.

    Opening checks that the checkpoint (the recorded one, or ``checkpoint``)
    and the gallery still have the content hashes recorded at build time,
    then builds the model from the index's ``config.py``.

    Args:
        index_dir: The folder :func:`build_search_index` wrote.
        checkpoint: Serve with this checkpoint instead of the recorded path
            (it must be the same file content).
        device: Torch device.
        batch_size: Pairs / items per forward pass when serving (the ITM
            re-ranking of k' candidates is one pass when k' <= batch_size).
        verify_gallery: Hash the gallery's files (on by default; a changed
            gallery would show wrong products).
        search_params: faiss search parameters replacing the tuned ones in
            ``meta['ann']``, e.g. ``'nprobe=128'`` (ValueError if the index
            has no such parameter).
        backend: ``'pytorch'`` (the model from the index's config and the
            checkpoint) or ``'onnxruntime'`` (the graphs in ``onnx_dir``,
            refused unless exported from the index's checkpoint; torch is
            then never imported and the checkpoint file is not needed).
        onnx_dir: Folder of ``tools/deployment/export_onnx.py``.
        threads: ONNX Runtime's threads (None: its default).

    Attributes:
        meta (dict): ``meta.json``.
        items (list[dict]): Per row: ``row``, ``product_id``, ``caption``,
            ``category``, ``thumbnail`` (relative to ``index_dir``).
        gallery (Gallery): The gallery (images for ITM re-ranking).
        inferencer (MVLTInferencer): The model.
        image_index / caption_index: faiss indexes (None in exact-ITM mode).
        image_embeds / caption_embeds (np.ndarray): (N, D) / (C, D).
        captions (list[dict]): Distinct ``caption`` with their ``rows``.

    Raises:
        FileNotFoundError: No complete index in ``index_dir`` or a missing
            checkpoint / gallery.
        IndexMismatchError: The checkpoint or gallery differ from the ones
            the index was built from (the message gives the rebuild command).
        mvlt.deploy.ManifestMismatchError: The ONNX graphs were exported
            from another checkpoint or vocabulary.
    """

    def __init__(self,
                 index_dir: str,
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 batch_size: int = 16,
                 verify_gallery: bool = True,
                 search_params: str = '',
                 backend: str = 'pytorch',
                 onnx_dir: Optional[str] = None,
                 threads: Optional[int] = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got '
                             f'{backend!r}.')
        if backend == 'onnxruntime' and not onnx_dir:
            raise ValueError("backend='onnxruntime' needs onnx_dir, the "
                             'folder of tools/deployment/export_onnx.py.')
        self.index_dir = osp.abspath(index_dir)
        self.backend = backend
        meta_path = osp.join(self.index_dir, META_FILE)
        if not osp.isfile(meta_path):
            raise FileNotFoundError(
                f'{self.index_dir} is not a complete search index (no '
                f'{META_FILE}); build one with tools/misc/'
                'build_search_index.py CONFIG CHECKPOINT --gallery SPEC '
                f'--out {index_dir}.')
        with open(meta_path, encoding='utf-8') as f:
            self.meta = json.load(f)
        if self.meta.get('format') != INDEX_FORMAT or \
                self.meta.get('mode') not in MODES:
            raise IndexMismatchError(
                f'{self.index_dir} is a search index of format '
                f'{self.meta.get("format")}, this mvlt reads format '
                f'{INDEX_FORMAT}; rebuild it: '
                f'{rebuild_command(self.meta, index_dir)}')
        with open(osp.join(self.index_dir, ITEMS_FILE), encoding='utf-8') as f:
            self.items = [json.loads(line) for line in f if line.strip()]
        if backend == 'onnxruntime':
            self._open_onnx(onnx_dir, checkpoint, batch_size, verify_gallery,
                            threads)
        else:
            self._open_pytorch(checkpoint, device, batch_size, verify_gallery)
        self.image_index = self.caption_index = None
        self.image_embeds = self.caption_embeds = None
        self.captions: List[dict] = []
        if self.has_itc:
            with open(
                    osp.join(self.index_dir, CAPTIONS_FILE),
                    encoding='utf-8') as f:
                self.captions = json.load(f)
            serve_single_threaded()
            ann = self.meta.get('ann') or {}
            rebuild = rebuild_command(self.meta, index_dir)
            self.image_index, self.image_embeds = open_ann(
                self.index_dir, IMAGE_INDEX.split('.')[0], ann.get('images'),
                self.meta['num_items'], self.meta['embed_dim'], rebuild)
            self.caption_index, self.caption_embeds = open_ann(
                self.index_dir, CAPTION_INDEX.split('.')[0],
                ann.get('captions'), len(self.captions),
                self.meta['embed_dim'], rebuild)
            self.set_search_params(parse_search_params(search_params))

    def _open_pytorch(self, checkpoint: Optional[str], device: str,
                      batch_size: int, verify_gallery: bool) -> None:
        from .inferencer import MVLTInferencer
        checkpoint = self._check_checkpoint(checkpoint)
        self.gallery = self._open_gallery(verify_gallery)
        try:
            self.inferencer = MVLTInferencer(
                osp.join(self.index_dir, self.meta['config']['file']),
                checkpoint,
                device=device,
                batch_size=batch_size)
        except FileNotFoundError as err:
            # Relative paths in the config (the vocabulary) are relative to
            # the folder the index was built in.
            raise FileNotFoundError(
                f'{err} (the config of {self.index_dir} was written in '
                f"{self.meta['config']['cwd']}: start from there)") from None
        except (TypeError, KeyError, ValueError) as err:
            # The stored config predates a change of the model's arguments.
            raise self._mismatch(
                f'its {CONFIG_FILE} does not build a model with this mvlt '
                f'({type(err).__name__}: {err}).') from None

    def _open_onnx(self, onnx_dir: str, checkpoint: Optional[str],
                   batch_size: int, verify_gallery: bool,
                   threads: Optional[int]) -> None:
        """The ONNX Runtime backend: graphs checked against the index's
        checkpoint hash (and ``checkpoint``'s, when given); the gallery's
        rows from ``items.jsonl``, its images read without torch."""
        from mvlt.deploy import OnnxInferencer
        if not self.has_itc:
            raise IndexMismatchError(
                f'{self.index_dir} is an exact-ITM index (no ITC head); '
                'serve it with the PyTorch backend.')
        self.inferencer = OnnxInferencer(
            onnx_dir,
            checkpoint=checkpoint,
            checkpoint_sha256=self.meta['checkpoint']['sha256'],
            batch_size=batch_size,
            num_threads=threads)
        # The rows recorded at build time: reading them from a Fashion-Gen
        # / JSON-lines source needs the data sets (torch); the content hash
        # still proves the source unchanged.
        self.gallery = self._open_gallery(verify_gallery, self.items)

    def set_search_params(self, params: dict) -> None:
        """Change the faiss search parameters of the image table (``nprobe``
        / ``efSearch`` / ``k_factor_rf``) from the tuned ones in
        ``meta['ann']``; an empty dict changes nothing.

        Raises:
            ValueError: A parameter the index does not have.
        """
        if params and self.image_index is not None:
            set_search_params(self.image_index, params)

    @property
    def has_itc(self) -> bool:
        """Whether the index holds ITC embeddings (else exact ITM only)."""
        return self.meta['mode'] == 'itc'

    @property
    def thumbs_dir(self) -> str:
        """The folder of the thumbnails (the only files a page serves)."""
        return osp.join(self.index_dir, THUMB_DIR)

    def _mismatch(self, what: str) -> IndexMismatchError:
        return IndexMismatchError(
            f'Refusing to serve {self.index_dir}: {what} Rebuild the index '
            'for the checkpoint and gallery you want to serve: '
            f'{rebuild_command(self.meta, self.index_dir)} (with your '
            'checkpoint / gallery in place of the recorded ones).')

    def _check_checkpoint(self, checkpoint: Optional[str]) -> str:
        recorded = self.meta['checkpoint']
        path = checkpoint or recorded['path']
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'Checkpoint {path} of search index {self.index_dir} does '
                'not exist; pass the checkpoint it was built with, or '
                f'rebuild: {rebuild_command(self.meta, self.index_dir)}')
        digest = file_sha256(path)
        if digest != recorded['sha256']:
            raise self._mismatch(
                f'it was built from checkpoint {recorded["path"]} (sha256 '
                f'{recorded["sha256"][:12]}...), but {path} has sha256 '
                f'{digest[:12]}...: its embeddings belong to other weights.')
        return path

    def _open_gallery(self,
                      verify: bool,
                      items: Optional[List[dict]] = None) -> Gallery:
        spec = self.meta['gallery']
        if items is not None:
            try:
                gallery = gallery_of_rows(spec, items)
            except ValueError as err:
                raise IndexMismatchError(f'{self.index_dir}: {err}') from None
        else:
            gallery = open_gallery(
                f"{spec['kind']}:{spec['path']}",
                spec.get('image_root'),
                exclude=spec.get('exclude', ()))
        if len(gallery) != self.meta['num_items']:
            raise self._mismatch(
                f'the gallery {spec["path"]} now has {len(gallery)} rows, '
                f'the index {self.meta["num_items"]}.')
        if verify and gallery.content_hash() != spec['sha256']:
            raise self._mismatch(
                f'the gallery {spec["path"]} changed since the index was '
                'built (its content hash differs).')
        return gallery
