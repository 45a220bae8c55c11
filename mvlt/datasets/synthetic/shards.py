"""A synthetic shop catalogue as image-caption tar shards (img2dataset
layout), for galleries far larger than the demo's HDF5 split.

The products and their photos come from the synthetic Fashion-Gen drawer
(:func:`.fashiongen.sample_products`, :func:`.garments.draw_garment`):
several photos (poses) per product, the product's description as the
caption. Each photo is JPEG-encoded (OpenCV) and written by
:func:`mvlt.datasets.shard_writer.write_shards` (the converters' writer) with
``product_id``, ``category`` and ``subcategory`` in its JSON. 100K photos of
256 px at quality 90 are about 0.8 GB of shards, where the same rows raw in
HDF5 would be 19.7 GB.
"""
import multiprocessing
from typing import Iterator, List, Tuple

import cv2
import numpy as np

from ..shard_writer import ShardSample, write_shards
from .fashiongen import sample_products
from .garments import draw_garment

#: Product id of the first product (the demo's splits use 100000 / 500000).
FIRST_PRODUCT_ID = 1_000_000


def _product_photos(task: tuple) -> List[bytes]:
    """JPEG bytes of the first ``count`` photos of a product (a pool task:
    ``(product, count, img_size, quality)``)."""
    product, count, img_size, quality = task
    photos = []
    for view in product.views[:count]:
        image = draw_garment(product.garment, product.style, view, img_size)
        ok, encoded = cv2.imencode('.jpg', image[..., ::-1],
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:  # OpenCV reports no reason
            raise ValueError(f'JPEG encoding of product '
                             f'{product.product_id} failed.')
        photos.append(encoded.tobytes())
    return photos


def synthetic_catalogue_samples(num_images: int,
                                views: Tuple[int, int] = (3, 6),
                                seed: int = 0,
                                img_size: int = 256,
                                quality: int = 90,
                                workers: int = 0) -> Iterator[ShardSample]:
    """Yield ``num_images`` JPEG photos of synthetic products, product by
    product (the last product may keep fewer photos than drawn).

    Args:
        num_images: Photos in all.
        views: Inclusive (min, max) photos per product (a shop shows each
            product from several sides).
        seed: Everything drawn depends only on it.
        img_size: Side of the square photos (px).
        quality: JPEG quality (OpenCV).
        workers: Processes that draw (spawned; 0: this one). The photos
            do not depend on it: each is drawn from its product alone.

    Raises:
        ValueError: ``num_images`` < 1 (``views`` is checked by
            :func:`sample_products`).
    """
    if num_images < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images}.')
    # Enough products for num_images photos even if every product drew
    # the fewest views.
    num_products = -(-num_images // max(1, int(views[0])))
    products = sample_products(num_products, views,
                               np.random.default_rng(seed), FIRST_PRODUCT_ID)
    tasks, left = [], num_images
    for product in products:
        if left == 0:
            break
        count = min(len(product.views), left)
        tasks.append((product, count, img_size, quality))
        left -= count
    if workers > 0:
        # Spawned, not forked: the caller may hold OpenMP / OpenCV threads.
        pool = multiprocessing.get_context('spawn').Pool(workers)
        drawn = pool.imap(_product_photos, tasks, chunksize=8)
    else:
        pool, drawn = None, map(_product_photos, tasks)
    try:
        for (product, *_), photos in zip(tasks, drawn):
            for view_index, photo in enumerate(photos):
                yield ShardSample(
                    image=photo,
                    image_ext='jpg',
                    caption=product.description,
                    meta=dict(
                        product_id=product.product_id,
                        category=product.garment.category,
                        subcategory=product.garment.subcategory,
                        view=view_index))
    finally:
        if pool is not None:
            pool.terminate()


def write_synthetic_catalogue(out_dir: str,
                              num_images: int,
                              views: Tuple[int, int] = (3, 6),
                              seed: int = 0,
                              img_size: int = 256,
                              quality: int = 90,
                              max_samples: int = 10000,
                              overwrite: bool = False,
                              workers: int = 0) -> dict:
    """Write :func:`synthetic_catalogue_samples` as tar shards of
    ``max_samples`` photos with a ``manifest.json`` (open it as a gallery
    with ``shards:OUT_DIR/manifest.json``).

    Returns:
        dict: The manifest.

    Raises:
        FileExistsError: ``out_dir`` has a manifest and not ``overwrite``.
    """
    return write_shards(
        synthetic_catalogue_samples(num_images, views, seed, img_size,
                                    quality, workers),
        out_dir,
        prefix='catalogue',
        max_samples=max_samples,
        source=f'synthetic catalogue: {num_images} photos, views {views}, '
        f'seed {seed}, {img_size} px, JPEG quality {quality}',
        overwrite=overwrite)
