"""The update mode of tools/analysis_tools/search_benchmark.py: adding
products to a search index of N synthetic items, without a rebuild.

Assembles an index folder from the files of a ``--synthetic N --work-dir
ANN_DIR`` run (``images.faiss`` / ``images.npy``, linked, not copied) and a
``--store N --work-dir STORE_DIR`` run (the item table and packs of N items,
3 photos a product), adds a flat caption table of the store's distinct
captions (clustered random embeddings), writes ``meta.json``, and then runs
:func:`mvlt.apis.search_index_update.update_search_index` with a generated
gallery of ``products`` new products (``photos`` images of 256 x 256 each).
The new embeddings are clustered random points of the index's width
(:class:`SyntheticEmbedder`): what is timed is the index update; embedding
the same gallery with a real model is timed by the update tool on a real
index (docs/search_at_scale.md).
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import time

import cv2
import numpy as np

from mvlt.apis.ann_index import import_faiss
from mvlt.apis.item_store import ITEMS_DB, ItemStore
from mvlt.apis.search_index_update import update_search_index
from .ann import clustered_embeddings


class SyntheticEmbedder:
    """Embeds images and captions as clustered random unit vectors of width
    ``dim`` (the synthetic mode's distribution); ``checkpoint`` is the file
    whose hash the index records."""

    has_itc = True

    def __init__(self, dim: int, checkpoint: str, pool: int = 16384) -> None:
        self.dim, self.checkpoint = dim, checkpoint
        # Drawn once: drawing per call would be timed as embedding.
        self._pool = clustered_embeddings(pool, dim, 100, 1000)
        self._used = 0

    def _next(self, count: int) -> np.ndarray:
        rows = np.arange(self._used, self._used + count) % len(self._pool)
        self._used += count
        return self._pool[rows]

    def embed_images(self, images) -> np.ndarray:
        return self._next(len(images))

    def embed_captions(self, texts) -> np.ndarray:
        return self._next(len(texts))


def write_new_gallery(root: str, products: int, photos: int) -> str:
    """A JSON-lines gallery of ``products`` x ``photos`` 256 x 256 JPEGs of
    coloured shapes; product ids ``NEW00000...``."""
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    rng = np.random.default_rng(0)
    path = osp.join(root, 'new.jsonl')
    with open(path, 'w') as f:
        for product in range(products):
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            for view in range(photos):
                image = np.full((256, 256, 3), 255, np.uint8)
                cv2.circle(image, (128 + 9 * view, 128), 40 + product % 60,
                           colour, -1)
                name = f'images/{product:05d}_{view}.jpg'
                cv2.imwrite(osp.join(root, name), image)
                f.write(
                    json.dumps(
                        dict(
                            img_path=name,
                            product_id=f'NEW{product:05d}',
                            caption=f'new product {product} in colour '
                            f'{colour}',
                            category='NEW')) + '\n')
    return path


def assemble_index(index_dir: str, ann_dir: str, store_dir: str) -> dict:
    """The index folder of N synthetic items (see the module docstring)."""
    faiss = import_faiss()
    os.makedirs(osp.join(index_dir, 'thumbs'), exist_ok=True)
    with open(osp.join(store_dir, 'store.json')) as f:
        info = json.load(f)
    num = info['num_items']
    files = [(ann_dir if name.startswith('images') else store_dir, name)
             for name in ('images.faiss', 'images.npy', ITEMS_DB)]
    files += [(store_dir, pack['file']) for pack in info['store']['packs']]
    for folder, name in files:
        try:  # the update never changes a file in place
            os.link(osp.join(folder, name), osp.join(index_dir, name))
        except OSError:  # another file system
            shutil.copyfile(osp.join(folder, name), osp.join(index_dir, name))
    dim = np.load(osp.join(ann_dir, 'images.npy'), mmap_mode='r').shape[1]
    captions = ItemStore(index_dir, info['store'], num, '').num_captions
    caption_embeds = clustered_embeddings(captions, dim, 7)
    flat = faiss.IndexFlatIP(dim)
    flat.add(caption_embeds)
    faiss.write_index(flat, osp.join(index_dir, 'captions.faiss'))
    np.save(osp.join(index_dir, 'captions.npy'), caption_embeds)
    checkpoint = osp.join(index_dir, 'synthetic.ckpt')
    with open(checkpoint, 'wb') as f:
        f.write(b'synthetic embeddings')
    meta = dict(
        format=2,
        mode='itc',
        num_items=num,
        embed_dim=dim,
        store=info['store'],
        ann=dict(images=dict(factory='synthetic'), captions=None),
        config=dict(source='synthetic', options={}, file='config.py'),
        checkpoint=dict(
            path=checkpoint,
            sha256=hashlib.sha256(b'synthetic embeddings').hexdigest()),
        gallery=dict(kind='synthetic', path=ann_dir, sha256='0' * 64),
        catalogue_sha256='0' * 64,
        thumb_size=128)
    with open(osp.join(index_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f)
    return meta


def run_update(ann_dir: str,
               store_dir: str,
               work_dir: str,
               products: int = 1000,
               photos: int = 3) -> dict:
    """Assemble the index, add the new products, reopen it; the figures."""
    index_dir = osp.join(work_dir, 'index')
    shutil.rmtree(index_dir, ignore_errors=True)
    start = time.perf_counter()
    meta = assemble_index(index_dir, ann_dir, store_dir)
    assembled = time.perf_counter() - start
    gallery_path = write_new_gallery(
        osp.join(work_dir, 'new'), products, photos)
    from mvlt.apis import open_gallery
    gallery = open_gallery(gallery_path)
    embedder = SyntheticEmbedder(meta['embed_dim'], meta['checkpoint']['path'])
    begin = time.perf_counter()
    new = update_search_index(index_dir, embedder, gallery)
    wall = time.perf_counter() - begin
    done = new['updates'][-1]
    store = ItemStore(index_dir, new['store'], new['num_items'], '')
    faiss = import_faiss()
    index = faiss.read_index(
        osp.join(index_dir, new['tables']['images']['file'] + '.faiss'))
    return dict(
        num_items=meta['num_items'],
        added_products=done['added_products'],
        added_rows=done['added_rows'],
        read_and_thumbnail_s=done['embed_seconds'],
        update_s=done['update_seconds'],
        wall_s=round(wall, 2),
        rows_after=new['num_items'],
        faiss_ntotal_after=int(index.ntotal),
        products_after=store.num_products,
        assemble_s=round(assembled, 2),
        load_average=os.getloadavg())
