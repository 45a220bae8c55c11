"""Incremental updates of a search index: add, replace and remove products
by product id, embedding only the new photos.

An update (``tools/misc/update_search_index.py``, :func:`update_search_index`)
* removes every row of the products named (``remove``) and of the products
  of ``add`` that the index already holds (a replacement: their old photos
  and caption go, the new ones come);
* appends the photos of ``add`` as new rows ``N, N + 1, ...`` (row = faiss
  id = row of ``images.npy``; ids are never reused), their thumbnails in a
  new pack, their new captions in the caption table;
* in faiss: an IVF index (``IVF...``, also under ``Refine(...)``) removes the
  ids and adds the new ones with ``add_with_ids`` / ``remove_ids``; an index
  without removal in faiss (``Flat``, ``HNSW...``: faiss cannot remove from
  HNSW graphs, and a flat index would renumber) keeps the removed vectors as
  tombstones that the search asks for in extra and drops
  (:class:`mvlt.apis.ann_index.RemovedIds`), and adds new vectors in order;
* writes every changed file under a new name (``items.gN.sqlite``,
  ``images.gN.faiss`` / ``.npy``, ``captions.gN...``), then ``meta.json``
  (atomically: the switch), then deletes the files of the old version. A
  killed or failed update leaves ``meta.json`` naming the old, complete
  files: the old index is served as before.

``meta.json`` records each update (``updates``), each added gallery with its
content hash (``additions``: checked when the index is opened, as the built
gallery is) and ``catalogue_sha256``, a hash chained over the built gallery
and every update, which identifies the catalogue an index serves.
"""
import fcntl
import hashlib
import json
import os
import os.path as osp
import shutil
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np

from .ann_files import open_faiss_index
from .ann_index import import_faiss
from .gallery import Gallery, file_sha256
from .item_store import ItemStore
from .item_store_writer import ItemWriter, PackWriter
from .search_index_layout import (INDEX_FORMAT, META_FILE, IndexMismatchError,
                                  ProgressFn, rebuild_command, table_file,
                                  write_meta)

if TYPE_CHECKING:
    from .inferencer import MVLTInferencer

#: Held (flock) while an update runs.
LOCK_FILE = 'update.lock'


def catalogue_hash(previous: str, added_sha: Optional[str],
                   removed: Sequence[str]) -> str:
    """The catalogue hash after an update: SHA-256 over the previous hash,
    the added gallery's content hash and the removed product ids."""
    text = json.dumps([previous, added_sha, sorted(removed)])
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def _faiss_ids(index):
    """The faiss index that holds the ids (the IVF under a ``Refine``) if
    it can add and remove by id, else None (Flat, HNSW, PQ...)."""
    faiss = import_faiss()
    base = faiss.downcast_index(index.base_index) if isinstance(
        index, faiss.IndexRefine) else index
    return base if isinstance(base, faiss.IndexIVF) else None


def update_faiss(index, first_id: int, new: np.ndarray, remove: Sequence[int],
                 readd: np.ndarray, readd_ids: Sequence[int]) -> bool:
    """Add vectors ``new`` with ids ``first_id, first_id + 1, ...``, remove
    ids ``remove`` and add back ``readd`` (vectors of ids ``readd_ids`` that
    were removed before and are served again).

    Returns:
        bool: Whether faiss removed the ids (an IVF); False: the index
        still holds them (tombstones, dropped when searching).

    Raises:
        ValueError: An index without ids whose size is not ``first_id``.
    """
    ids = _faiss_ids(index)
    new = np.ascontiguousarray(new, np.float32)
    if ids is None:  # positions are the ids: append in order
        if index.ntotal != first_id:
            raise ValueError(f'The faiss index holds {index.ntotal} vectors, '
                             f'not {first_id}: rebuild the index.')
        if len(new):
            index.add(new)
        return False
    if len(remove):
        ids.remove_ids(np.asarray(remove, np.int64))
    for vectors, id_list in ((new, np.arange(first_id, first_id + len(new))),
                             (readd, readd_ids)):
        if len(vectors):
            ids.add_with_ids(
                np.ascontiguousarray(vectors, np.float32),
                np.asarray(id_list, np.int64))
    if ids is not index:  # a Refine: its codes are looked up by position,
        if len(new):  # removed ones stay there (the IVF no longer finds
            index.refine_index.add(new)  # them) and faiss checks every id
        index.ntotal = index.refine_index.ntotal  # against this count
    return True


def append_npy(old: str, new: str, rows: np.ndarray) -> None:
    """``new`` = the (N, D) float32 ``old`` with ``rows`` (M, D) appended,
    written whole (the old file is not changed) and synced."""
    array = np.load(old, mmap_mode='r')
    shape = (array.shape[0] + len(rows), array.shape[1])
    size = osp.getsize(old) - array.offset
    with open(new, 'wb') as out, open(old, 'rb') as src:
        np.lib.format.write_array_header_1_0(
            out, dict(descr='<f4', fortran_order=False, shape=shape))
        out.flush()
        # The kernel copies (copy_file_range): a Python read/write loop
        # took 9 s for 1.3 GB on the busy 2-vCPU machine.
        done, start = 0, out.tell()
        try:
            while done < size:
                copied = os.copy_file_range(src.fileno(), out.fileno(),
                                            size - done, array.offset + done,
                                            start + done)
                if not copied:
                    raise OSError('copy_file_range copied nothing')
                done += copied
        except (OSError, AttributeError):  # no copy_file_range here
            src.seek(array.offset + done)
            out.seek(start + done)
            shutil.copyfileobj(src, out, 16 << 20)
        out.seek(start + size)
        out.write(np.ascontiguousarray(rows, '<f4').tobytes())
        out.flush()
        os.fsync(out.fileno())


def _embed(inferencer, gallery: Gallery, thumb_size: int, chunk_size: int,
           itc: bool, progress: Optional[ProgressFn]) -> tuple:
    from mvlt.visualization import encode_rgb_image  # needs torch
    embeds, thumbs = [], []
    for first in range(0, len(gallery), chunk_size):
        images = gallery.read_many(
            range(first, min(first + chunk_size, len(gallery))))
        thumbs += [
            encode_rgb_image(image, '.jpg', thumb_size, 90)
            for image in images
        ]
        if itc:
            embeds.append(inferencer.embed_images(images))
        if progress is not None:
            progress(first + len(images), len(gallery))
    return (np.concatenate(embeds) if embeds else np.zeros(
        (0, 1), np.float32)), thumbs


def update_search_index(index_dir: str,
                        inferencer: Optional['MVLTInferencer'] = None,
                        add: Optional[Gallery] = None,
                        remove: Sequence[str] = (),
                        chunk_size: int = 64,
                        progress: Optional[ProgressFn] = None) -> dict:
    """Add, replace and remove products of a search index in place.

    Args:
        index_dir: The index (built by :func:`build_search_index`).
        inferencer: The index's model (same checkpoint content), needed to
            embed ``add``.
        add: New products; a product id the index already holds replaces
            that product (all its old photos).
        remove: Product ids to remove.
        chunk_size: Images embedded at a time.
        progress: Called with (images embedded, total).

    Returns:
        dict: The new ``meta.json``; its last ``updates`` entry holds the
        counts and ``embed_seconds`` / ``update_seconds``.

    Raises:
        FileNotFoundError: No complete index in ``index_dir``.
        IndexMismatchError: An index of another format, or ``inferencer``
            with another checkpoint than the index's.
        ValueError: Nothing to do, or a product id to remove that the index
            does not serve.
        RuntimeError: Another update of the index is running.
    """
    if not osp.isfile(osp.join(index_dir, META_FILE)):
        raise FileNotFoundError(f'{index_dir} is not a complete search index '
                                f'(no {META_FILE}).')
    with open(osp.join(index_dir, LOCK_FILE), 'w') as lock:
        try:  # two updates would write the same new file names
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f'Another update of {index_dir} is running; '
                               'try again when it has finished.') from None
        return _apply_update(index_dir, inferencer, add, remove, chunk_size,
                             progress)


def _apply_update(index_dir: str, inferencer, add: Optional[Gallery],
                  remove: Sequence[str], chunk_size: int,
                  progress: Optional[ProgressFn]) -> dict:
    meta_path = osp.join(index_dir, META_FILE)
    with open(meta_path, encoding='utf-8') as f:
        meta = json.load(f)
    rebuild = rebuild_command(meta, index_dir)
    if meta.get('format') != INDEX_FORMAT:
        raise IndexMismatchError(
            f'{index_dir} is a search index of format {meta.get("format")}; '
            f'updates need format {INDEX_FORMAT}. Rebuild it: {rebuild}')
    if add is None and not remove:
        raise ValueError('Nothing to update: give products to add or ids to '
                         'remove.')
    if add is not None:
        if inferencer is None:
            raise ValueError('Adding products needs the index\'s model.')
        digest = file_sha256(inferencer.checkpoint)
        if digest != meta['checkpoint']['sha256']:
            raise IndexMismatchError(
                f'{index_dir} was built from checkpoint '
                f'{meta["checkpoint"]["path"]}; {inferencer.checkpoint} has '
                'other content, and embeddings of other weights cannot be '
                f'mixed. Rebuild the index: {rebuild}')
    store = ItemStore(index_dir, meta['store'], meta['num_items'], rebuild)
    itc = meta['mode'] == 'itc'
    start = time.perf_counter()
    added = [] if add is None else list(add.rows)
    new_ids = sorted({r['product_id'] for r in added})
    unknown = [p for p in remove if not store.product_rows(p)]
    if unknown:
        raise ValueError(
            f'{len(unknown)} product id(s) to remove are not served by '
            f'{index_dir}: {", ".join(map(str, unknown[:5]))}'
            f'{" ..." if len(unknown) > 5 else ""}; nothing was changed.')
    replaced = [p for p in new_ids if store.product_rows(p)]
    gone = sorted(set(remove) | set(replaced))
    removed_rows = [r for p in gone for r in store.product_rows(p)]
    thumb_size = meta.get('thumb_size', 128)
    embeds, thumbs = _embed(inferencer, add, thumb_size, chunk_size, itc,
                            progress) if added else (None, [])
    texts = [
        c for c in dict.fromkeys(r['caption'] for r in added)
        if not _has_caption(store, c)
    ] if itc else []
    caption_vectors = dict(
        zip(texts, (v for i in range(0, len(texts), chunk_size)
                    for v in inferencer.embed_captions(texts[i:i +
                                                             chunk_size]))))
    embed_seconds = time.perf_counter() - start

    # 1. New files under new names; the index still serves the old ones.
    generation = meta.get('generation', 0) + 1
    num_old = meta['num_items']
    db_name = f'items.g{generation}.sqlite'
    shutil.copyfile(store.path, osp.join(index_dir, db_name + '.tmp'))
    table = ItemWriter(osp.join(index_dir, db_name + '.tmp'), create=False)
    num_captions = table.num_captions
    dead = table.remove_rows(removed_rows)
    packs = PackWriter(index_dir, len(meta['store']['packs']))
    source = len(meta.get('additions') or []) + 1
    for i, (item, thumb) in enumerate(zip(added, thumbs)):
        table.add(num_old + i, item, packs.add(thumb), source, i)
    dead = table.dead_captions(dead)
    revived = table.revived
    new_packs = packs.close()
    tables: Dict[str, dict] = {}
    if itc:
        caption_embeds = np.array(
            [caption_vectors[t] for t in table.new_captions()],
            np.float32).reshape(-1, meta['embed_dim'])
        faiss = import_faiss()
        for name, rows, first, vectors, gone_ids, back in (
                ('images', num_old, num_old, embeds, removed_rows, []),
                ('captions', num_captions, num_captions, caption_embeds,
                 dead, revived)):
            stem, ntotal, _ = table_file(meta, name)
            index = open_faiss_index(
                osp.join(index_dir, f'{stem}.faiss'),
                rows if ntotal is None else ntotal, meta['embed_dim'],
                rebuild)
            old_npy = osp.join(index_dir, f'{stem}.npy')
            back_vectors = np.load(old_npy, mmap_mode='r')[sorted(back)] \
                if len(back) else np.zeros((0, meta['embed_dim']), np.float32)
            if vectors is None:  # nothing added
                vectors = np.zeros((0, meta['embed_dim']), np.float32)
            by_id = update_faiss(index, first, vectors, gone_ids,
                                 back_vectors, sorted(back))
            new_stem = f'{name}.g{generation}'
            faiss.write_index(index,
                              osp.join(index_dir, f'{new_stem}.faiss.tmp'))
            with open(osp.join(index_dir, f'{new_stem}.faiss.tmp'), 'rb') as f:
                os.fsync(f.fileno())  # on disk before meta.json names it
            os.replace(
                osp.join(index_dir, f'{new_stem}.faiss.tmp'),
                osp.join(index_dir, f'{new_stem}.faiss'))
            append_npy(old_npy, osp.join(index_dir, f'{new_stem}.npy.tmp'),
                       vectors)
            os.replace(
                osp.join(index_dir, f'{new_stem}.npy.tmp'),
                osp.join(index_dir, f'{new_stem}.npy'))
            # Without removal in faiss, every removed id is a tombstone.
            tables[name] = dict(
                file=new_stem,
                ntotal=int(index.ntotal),
                tombstones=0 if by_id else table.removed_count(
                    'items' if name == 'images' else 'captions'))
    table.close()
    os.replace(
        osp.join(index_dir, db_name + '.tmp'), osp.join(index_dir, db_name))

    # 2. The switch: meta.json names the new files.
    old_files = _files_of(meta)
    added_spec = None
    if add is not None:
        added_spec = dict(**add.spec, sha256=add.content_hash(), rows=len(add))
    new_meta = dict(
        meta,
        num_items=num_old + len(added),
        store=dict(
            meta['store'],
            items=db_name,
            packs=meta['store']['packs'] + new_packs),
        generation=generation,
        additions=(meta.get('additions') or []) +
        ([added_spec] if added_spec else []),
        catalogue_sha256=catalogue_hash(
            meta.get('catalogue_sha256') or meta['gallery']['sha256'],
            added_spec and added_spec['sha256'], gone))
    if tables:
        new_meta['tables'] = tables
    entry = dict(
        time=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        added_products=len(set(new_ids) - set(replaced)),
        replaced_products=len(replaced),
        removed_products=len(set(remove)),
        added_rows=len(added),
        removed_rows=len(removed_rows),
        gallery=added_spec and added_spec['path'],
        embed_seconds=round(embed_seconds, 3),
        update_seconds=round(time.perf_counter() - start - embed_seconds, 3))
    new_meta['updates'] = (meta.get('updates') or []) + [entry]
    write_meta(index_dir, new_meta)

    # 3. The old version's files (a server that has them open keeps them).
    for name in old_files - _files_of(new_meta):
        if osp.exists(osp.join(index_dir, name)):
            os.remove(osp.join(index_dir, name))
    return new_meta


def _has_caption(store: ItemStore, caption: str) -> bool:
    try:
        store.caption_id(caption)
    except KeyError:
        return False
    return True


def _files_of(meta: dict) -> set:
    """The table files a ``meta.json`` names (packs are never replaced)."""
    names = {meta['store']['items']}
    if meta['mode'] == 'itc':
        for table in ('images', 'captions'):
            stem = table_file(meta, table)[0]
            names |= {f'{stem}.faiss', f'{stem}.npy'}
    return names


def parse_product_ids(values: Sequence[str]) -> List[str]:
    """Product ids from the command line: ids, or files of one id a line
    (``@FILE`` or an existing path)."""
    ids: List[str] = []
    for value in values:
        path = value[1:] if value.startswith('@') else value
        if value.startswith('@') or osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                ids += [line.strip() for line in f if line.strip()]
        else:
            ids += [v for v in value.split(',') if v]
    return ids
