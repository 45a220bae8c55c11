"""The files of a search index's embedding tables: writing them, opening
them with every check, and what the page says about them.

A table ``NAME`` (``images`` or ``captions``) is ``NAME.faiss`` (the exact or
approximate index of :mod:`mvlt.apis.ann_index`) and ``NAME.npy`` (the exact
float32 embeddings, read row by row when served: :class:`EmbeddingRows`).
A missing, truncated or foreign file is refused when the index is opened,
with a message that names the file and the command that rebuilds it.
"""
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np

from .ann_index import (DEFAULT_RECALL_QUERIES, DEFAULT_TARGET_RECALL,
                        build_ann_index, import_faiss, set_search_params,
                        tune_search_params)


class IndexFileError(RuntimeError):
    """A faiss / embedding file of an index is missing, corrupt or does not
    match the index's metadata."""


def open_faiss_index(path: str, num_items: int, dim: int, rebuild: str):
    """Read a faiss index file and check it holds ``num_items`` vectors of
    width ``dim``.

    Raises:
        IndexFileError: Missing, unreadable (truncated, not a faiss file) or
            of another width / row count; the message names the file and
            gives ``rebuild``, the command that builds it again.
    """
    faiss = import_faiss()
    what = None
    if not osp.isfile(path):
        what = 'is missing'
    else:
        try:
            index = faiss.read_index(path)
        except RuntimeError as err:
            what = ('is not a readable faiss index (truncated or foreign: '
                    f'{str(err).strip().splitlines()[-1][:200]})')
        else:
            if index.d != dim:
                what = f'holds vectors of width {index.d}, not {dim}'
            elif index.ntotal != num_items:
                what = f'holds {index.ntotal} vectors, not {num_items}'
    if what:
        raise IndexFileError(f'{path} {what}; the index is damaged or from '
                             f'another build. Rebuild it: {rebuild}')
    return index


class EmbeddingRows:
    """(N, D) float32 embeddings in a ``.npy`` file, rows read on demand.

    Rows are read with ``os.pread``, so a query costs a few kilobytes of
    memory whatever N. A memory map was tried first: on this machine's
    kernel every touched row mapped its whole page-cache folio (about 1.4 MB
    of resident memory per row read), so resident memory grew with the
    queries served.

    Supports ``len``, ``shape``, ``dtype``, indexing by an int (D,), a slice
    or an integer array (K, D), and ``np.asarray`` (the whole table).
    """

    def __init__(self, path: str, offset: int, num: int, dim: int) -> None:
        self.path, self.offset = path, offset
        self.shape, self.dtype = (num, dim), np.dtype(np.float32)
        self._row_bytes = dim * 4
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self) -> None:
        fd = getattr(self, '_fd', None)
        if fd is not None:
            os.close(fd)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        if isinstance(key, slice):
            key = np.arange(*key.indices(len(self)))
        rows = np.asarray(key, np.int64).ravel()
        if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f'{self.path}: rows out of 0..{len(self) - 1}')
        rows = np.where(rows < 0, rows + len(self), rows)
        out = np.empty((len(rows), self.shape[1]), np.float32)
        for i, row in enumerate(rows):
            data = os.pread(self._fd, self._row_bytes,
                            self.offset + int(row) * self._row_bytes)
            out[i] = np.frombuffer(data, np.float32)
        return out.reshape(*np.shape(key), self.shape[1])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = np.fromfile(
            self.path, np.float32, offset=self.offset).reshape(self.shape)
        return array if dtype is None else array.astype(dtype)


def open_embeddings(path: str, num_items: int, dim: int,
                    rebuild: str) -> EmbeddingRows:
    """Open an (N, D) float32 ``.npy`` of embeddings for row reads
    (:class:`EmbeddingRows`), after checking its header.

    Raises:
        IndexFileError: Missing, not a .npy of float32 (N, D) with the
            recorded N and D, or shorter than its header says (message: the
            file and ``rebuild``).
    """
    try:
        array = np.load(path, mmap_mode='r')
    except (OSError, ValueError) as err:
        raise IndexFileError(f'{path} cannot be read as embeddings ({err}); '
                             f'rebuild the index: {rebuild}') from None
    if array.dtype != np.float32 or array.shape != (num_items, dim) or \
            not array.flags.c_contiguous:
        raise IndexFileError(
            f'{path} holds {array.dtype} {array.shape}, not float32 '
            f'({num_items}, {dim}); rebuild the index: {rebuild}')
    return EmbeddingRows(path, array.offset, num_items, dim)


def write_ann(out_dir: str,
              name: str,
              embeds: np.ndarray,
              queries: np.ndarray,
              factory: str = 'auto',
              memory_budget: Optional[int] = None,
              target_recall: float = DEFAULT_TARGET_RECALL,
              max_queries: int = DEFAULT_RECALL_QUERIES,
              seed: int = 0) -> dict:
    """Build, tune and write one table of a search index: ``NAME.faiss``
    (the ANN index) and ``NAME.npy`` (the exact float32 embeddings, read by
    row when served).

    Args:
        out_dir: The index folder.
        name: ``images`` or ``captions``.
        embeds: (N, D) L2-normalised embeddings.
        queries: Held-out queries for the recall measurement (the other
            modality's embeddings: captions search images and images
            captions); at most ``max_queries`` are used.
        factory / memory_budget / seed: As :func:`build_ann_index`.
        target_recall: The recall@10 the search parameters are raised to.

    Returns:
        dict: The table's metadata: ``factory``, ``params``,
        ``recall_at_10``, ``target``, ``queries``, ``curve``,
        ``index_bytes``, ``train_size`` and timings.
    """
    faiss = import_faiss()
    index, info = build_ann_index(embeds, factory, memory_budget, seed)
    if len(queries) > max_queries:
        pick = np.random.default_rng(seed).choice(
            len(queries), max_queries, replace=False)
        queries = queries[np.sort(pick)]
    tuned = tune_search_params(index, embeds, queries, target_recall)
    faiss.write_index(index, osp.join(out_dir, f'{name}.faiss'))
    np.save(osp.join(out_dir, f'{name}.npy'),
            np.ascontiguousarray(embeds, np.float32))
    return dict(info, **tuned)


def open_ann(index_dir: str,
             name: str,
             entry: Optional[dict],
             num_items: int,
             dim: int,
             rebuild: str,
             ntotal: Optional[int] = None) -> tuple:
    """Open one table written by :func:`write_ann` (or by a version before
    it: a flat ``NAME.faiss`` alone), with its recorded search parameters.

    ``ntotal``: the vectors the faiss index holds when an update removed
    some from it (else ``num_items``, the rows of ``NAME.npy``).

    Returns:
        tuple: (faiss index, (N, D) float32 embeddings: an
        :class:`EmbeddingRows`, or for an older index the flat index's own
        vectors).

    Raises:
        IndexFileError: A missing, truncated or foreign file (the message
            names it and gives ``rebuild``).
    """
    index = open_faiss_index(
        osp.join(index_dir, f'{name}.faiss'),
        num_items if ntotal is None else ntotal, dim, rebuild)
    npy = osp.join(index_dir, f'{name}.npy')
    if entry is None and not osp.exists(npy):
        return index, index.reconstruct_n(0, index.ntotal)
    set_search_params(index, (entry or {}).get('params') or {})
    return index, open_embeddings(npy, num_items, dim, rebuild)


def ann_summary(meta: dict) -> Dict[str, dict]:
    """Per table of an index's ``meta.json``: ``factory``, ``params``,
    ``recall_at_10`` (vs exact search), ``queries`` and ``index_bytes``
    (what the page and ``/api/info`` report; empty for an exact-ITM index
    or one built before ANN indexes)."""
    keys = ('factory', 'params', 'recall_at_10', 'queries', 'index_bytes')
    return {
        table: {key: entry.get(key)
                for key in keys}
        for table, entry in (meta.get('ann') or {}).items()
    }


def describe_ann(meta: dict) -> str:
    """One sentence on an index's ANN tables and their measured recall
    (the page shows it; empty when nothing was measured)."""
    parts = [
        f"{table}: {a['factory']}, recall@10 {a['recall_at_10']:.3f} vs "
        f"exact search ({a['queries']} held-out queries)"
        for table, a in ann_summary(meta).items()
    ]
    return ('Index ' + '; '.join(parts) + '.') if parts else ''
