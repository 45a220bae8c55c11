"""A catalogue-search index opened for queries: :class:`SearchIndex`.

Built by :func:`build_search_index` (``tools/misc/build_search_index.py``,
:mod:`mvlt.apis.search_index_build`; the folder's files:
:mod:`mvlt.apis.search_index_layout`), opened by :class:`SearchIndex`,
queried by :class:`mvlt.apis.CatalogueSearch`. The embeddings come from
:class:`MVLTInferencer` (the model's scoring API); faiss only stores them
and finds nearest neighbours (inner product of L2-normalised vectors =
cosine similarity, as :func:`mvlt.models.utils.itc_similarity`).
"""
import json
import os.path as osp
from typing import Optional

from .ann_files import open_ann
from .ann_index import (RemovedIds, parse_search_params, serve_single_threaded,
                        set_search_params)
from .gallery import file_sha256
from .index_sources import SourcesGallery, open_sources
from .item_store import ItemStore
# Importable from here as before the build moved to its own module.
from .search_index_build import build_search_index  # noqa: F401
from .search_index_build import estimate_exact_itm_seconds  # noqa: F401
from .search_index_layout import ProgressFn  # noqa: F401
from .search_index_layout import (BACKENDS, CONFIG_FILE, INDEX_FORMAT,
                                  META_FILE, MODES, IndexMismatchError,
                                  rebuild_command, table_file)


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
        items (ItemStore): The item table (SQLite) and thumbnails (packs),
            read by row when needed (:mod:`mvlt.apis.item_store`):
            ``items[row]`` is a dict of ``row``, ``product_id``,
            ``caption``, ``category``, ``thumbnail`` (its URL path).
        gallery (Gallery | SourcesGallery): The images of the rows (for ITM
            re-ranking): the gallery, and those updates added from.
        inferencer (MVLTInferencer): The model.
        image_index / caption_index: faiss indexes (None in exact-ITM mode).
        image_embeds / caption_embeds (np.ndarray): (N, D) / (C, D).
        removed (dict): ``images`` / ``captions``: the
            :class:`~mvlt.apis.ann_index.RemovedIds` of rows and captions
            that updates removed (never served).

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
        rebuild = rebuild_command(self.meta, index_dir)
        self.items = ItemStore(self.index_dir, self.meta['store'],
                               self.meta['num_items'], rebuild)
        if backend == 'onnxruntime':
            self._open_onnx(onnx_dir, checkpoint, batch_size, verify_gallery,
                            threads)
        else:
            self._open_pytorch(checkpoint, device, batch_size, verify_gallery)
        self.image_index = self.caption_index = None
        self.image_embeds = self.caption_embeds = None
        # Rows / captions removed by updates: never served.
        self.removed = dict(
            images=RemovedIds(self.items.removed('items')),
            captions=RemovedIds(self.items.removed('captions')))
        if self.has_itc:
            serve_single_threaded()
            ann = self.meta.get('ann') or {}
            opened = {}
            for name, count in (('images', self.meta['num_items']),
                                ('captions', self.items.num_captions)):
                stem, ntotal, tombstones = table_file(self.meta, name)
                index, embeds = open_ann(self.index_dir, stem, ann.get(name),
                                         count, self.meta['embed_dim'],
                                         rebuild, ntotal)
                # ``tombstones`` of the removed ids are still in the faiss
                # index (asked for in extra).
                opened[name] = index, embeds, RemovedIds(
                    self.removed[name].ids, tombstones)
            self.image_index, self.image_embeds, self.removed['images'] = \
                opened['images']
            self.caption_index, self.caption_embeds, \
                self.removed['captions'] = opened['captions']
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
        rows from the item table, its images read without torch."""
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
        self.gallery = self._open_gallery(verify_gallery, recorded=True)

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

    def _mismatch(self, what: str) -> IndexMismatchError:
        return IndexMismatchError(
            f'Refusing to serve {self.index_dir}: {what} Rebuild the index '
            'for the checkpoint and gallery you want to serve: '
            f'{rebuild_command(self.meta, self.index_dir)} (with your '
            'checkpoint / gallery in place of the recorded ones)' +
            ('; then add the products of its updates again: '
             'tools/misc/update_search_index.py INDEX --add SPEC for each '
             'gallery in meta.json "additions".'
             if self.meta.get('additions') else '.'))

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

    def _open_gallery(self, verify: bool, recorded: bool = False):
        """The gallery of the index's rows: the built one, or with updates
        a :class:`SourcesGallery` over it and the added ones; each checked
        (:func:`open_sources`). ``recorded``: their rows from the item table
        (torch-free, the ONNX backend)."""
        parts = open_sources(
            self.meta, verify, self._mismatch,
            self.items.source_items if recorded else None)
        if len(parts) == 1:
            return parts[0]
        return SourcesGallery(parts, self.items.sources, len(self.items))
