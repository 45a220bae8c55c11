"""Incremental updates of a search index: added products are found,
removed ones never returned, replaced ones show their new caption and
thumbnail; the catalogue hash changes, a changed added gallery is refused,
and a failed update leaves the old index served."""
import copy
import fcntl
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from search_test_utils import fit_itc_projections, save_model

from conftest import REPO, draw_product, load_tool
from mvlt.apis import (CatalogueSearch, IndexMismatchError, SearchIndex,
                       open_gallery)
from mvlt.apis import search_index_update as update_module
from mvlt.apis.ann_index import RemovedIds, import_faiss, shortlists
from mvlt.apis.search_index_update import update_faiss
from mvlt.utils import register_all_modules

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')
register_all_modules()

#: An ITC head as wide as the nano model's features, so that
#: fit_itc_projections can map every product to its own one-hot vector.
WIDE_ITC = dict(
    type='ITCHead', visual_channels=128, text_channels=128, embed_dim=128)
NEW = [  # (product, caption, colour, shape, view)
    ('n1', 'a green square on a red background', 'green', 'square', 3),
    ('n1', 'a green square on a red background', 'green', 'square', 4),
    ('3', 'a blue circle on a green background', 'blue', 'circle', 5),
]
REMOVED = '0'


def _write_gallery(root: str, rows: list) -> str:
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    with open(osp.join(root, 'new.jsonl'), 'w') as f:
        for product, caption, colour, shape, view in rows:
            name = f'{product}_{view}.png'
            cv2.imwrite(
                osp.join(root, 'images', name),
                draw_product(colour, shape, view)[..., ::-1])
            f.write(
                json.dumps(
                    dict(
                        img_path=f'images/{name}',
                        caption=caption,
                        product_id=product,
                        category='NEW')) + '\n')
    return osp.join(root, 'new.jsonl')


@pytest.fixture(scope='module')
def setup(nano_config, nano_data, tmp_path_factory):
    """The nano model with an ITC head fitted to the nano gallery and the
    new products, the index of the nano gallery, and the new gallery."""
    root = str(tmp_path_factory.mktemp('update'))
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = WIDE_ITC
    config, checkpoint = save_model(cfg, root, 'wide_itc')
    new = _write_gallery(osp.join(root, 'new'), NEW)
    images = osp.join(nano_data['root'], 'images')
    base = open_gallery(osp.join(nano_data['root'], 'test.jsonl'), images)
    added = open_gallery(new)
    rows = base.rows + added.rows
    fit_itc_projections(
        config, checkpoint,
        base.read_many(range(len(base))) + added.read_many(range(3)),
        [r['caption'] for r in rows], [r['product_id'] for r in rows])
    out = osp.join(root, 'index')
    load_tool('misc/build_search_index.py').main([
        config, checkpoint, '--gallery', base.path, '--image-root', images,
        '--out', out, '--rank-queries', '0'
    ])
    return dict(root=root, out=out, new=new, base=base)


def _copy(setup: dict, tmp_path) -> str:
    out = str(tmp_path / 'index')
    shutil.copytree(setup['out'], out)
    return out


def _rows(search: CatalogueSearch, query: str) -> list:
    return search.search_text(query, 100, 0, by_product=False)['results']


def test_added_found_removed_gone_replaced_new(setup, tmp_path):
    out = _copy(setup, tmp_path)
    before = SearchIndex(out).meta
    removed_caption = next(r['caption'] for r in setup['base'].rows
                           if r['product_id'] == REMOVED)
    old_caption_3 = next(r['caption'] for r in setup['base'].rows
                         if r['product_id'] == '3')
    meta = load_tool('misc/update_search_index.py').main(
        [out, '--add', setup['new'], '--remove', REMOVED])
    done = meta['updates'][-1]
    assert (done['added_products'], done['replaced_products'],
            done['removed_products'], done['added_rows'],
            done['removed_rows']) == (1, 1, 1, 3, 4)
    assert meta['num_items'] == 19 and meta['generation'] == 1
    assert meta['catalogue_sha256'] != before['catalogue_sha256']
    assert meta['additions'][0]['path'] == setup['new']
    # The old version's table files are gone, the new ones served.
    names = set(os.listdir(out))
    assert {'items.g1.sqlite', 'images.g1.faiss', 'captions.g1.npy'} <= names
    assert not {'items.sqlite', 'images.faiss', 'captions.npy'} & names
    search = CatalogueSearch(SearchIndex(out))
    # Added: found first by its caption, photos grouped on one card.
    card = search.search_text(NEW[0][1], 3, 0)['results'][0]
    assert card['product_id'] == 'n1' and sorted(card['photos']) == [16, 17]
    # Replaced: its new caption and thumbnail (the new photo, row 18).
    card = search.search_text(NEW[2][1], 3, 0)['results'][0]
    assert (card['product_id'], card['row'], card['caption']) == \
        ('3', 18, NEW[2][1])
    assert card['photos'] == [18]
    thumb = cv2.imdecode(
        np.frombuffer(search.index.items.thumbnail(18), np.uint8),
        cv2.IMREAD_COLOR)[..., ::-1]
    drawn = cv2.resize(draw_product('blue', 'circle', 5), thumb.shape[1::-1])
    assert np.abs(thumb.astype(int) - drawn).mean() < 8
    # Removed (and the replaced product's old rows): never returned.
    old_rows = [r for r, row in enumerate(setup['base'].rows)
                if row['product_id'] in (REMOVED, '3')]
    for query in (removed_caption, old_caption_3, NEW[0][1]):
        hits = _rows(search, query)
        assert len(hits) == 19 - len(old_rows)
        assert not {h['row'] for h in hits} & set(old_rows)
        assert REMOVED not in {h['product_id'] for h in hits}
    for row in old_rows:
        assert search.index.items.thumbnail(row) is None
    # Image -> text: the captions no product carries any more are gone.
    image = draw_product('red', 'circle', 0)
    out_image = search.search_image(image, 100, 0, by_product=False)
    captions = {c['caption'] for c in out_image['captions']}
    assert removed_caption not in captions and old_caption_3 not in captions
    assert NEW[2][1] in captions
    assert REMOVED not in {p['product_id'] for p in out_image['products']}
    with pytest.raises(Exception, match='removed'):
        search.more_like(old_rows[0])
    # A changed added gallery is refused like a changed built one.
    cv2.imwrite(
        osp.join(osp.dirname(setup['new']), 'images', 'n1_3.png'),
        draw_product('red', 'square', 1)[..., ::-1])
    try:
        with pytest.raises(IndexMismatchError, match='added gallery .* '
                           'changed.*update_search_index.py'):
            SearchIndex(out)
    finally:
        _write_gallery(osp.dirname(setup['new']), NEW)


def test_failed_update_leaves_the_old_index(setup, tmp_path, monkeypatch):
    out = _copy(setup, tmp_path)
    search = CatalogueSearch(SearchIndex(out))
    query = setup['base'].rows[0]['caption']
    expected = _rows(search, query)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt('killed before the switch')

    monkeypatch.setattr(update_module, 'write_meta', crash)
    with pytest.raises(KeyboardInterrupt):
        load_tool('misc/update_search_index.py').main(
            [out, '--add', setup['new'], '--remove', REMOVED])
    assert os.path.exists(osp.join(out, 'images.g1.faiss'))  # written...
    served = SearchIndex(out)  # ...but not switched to
    assert served.meta.get('generation') is None
    assert served.meta['num_items'] == 16
    assert _rows(CatalogueSearch(served), query) == expected
    monkeypatch.undo()
    # Running it again completes it.
    meta = load_tool('misc/update_search_index.py').main(
        [out, '--remove', REMOVED])
    assert meta['num_items'] == 16 and meta['generation'] == 1
    assert REMOVED not in {
        h['product_id']
        for h in _rows(CatalogueSearch(SearchIndex(out)), query)
    }


def test_bad_updates_are_refused(setup, tmp_path):
    out = _copy(setup, tmp_path)
    tool = load_tool('misc/update_search_index.py')
    with pytest.raises(SystemExit, match='not served by .* no-such'):
        tool.main([out, '--remove', 'no-such,0'])
    with pytest.raises(SystemExit, match='not a complete search index'):
        tool.main([str(tmp_path), '--remove', '0'])
    with open(osp.join(out, update_module.LOCK_FILE), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another update is running
        with pytest.raises(SystemExit, match='Another update'):
            tool.main([out, '--remove', '0'])
    assert SearchIndex(out).meta.get('generation') is None


@pytest.mark.parametrize(
    'factory', ['IVF16,Flat', 'IVF16,PQ8x4fs,Refine(SQ8)', 'Flat', 'HNSW8'])
def test_faiss_add_and_remove(factory):
    """IVF indexes remove by id; Flat / HNSW keep tombstones that the
    served path drops; added vectors get the next ids everywhere."""
    faiss = import_faiss()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2010, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = faiss.index_factory(16, factory, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors[:2000])
    index.add(vectors[:2000])
    faiss.ParameterSpace().set_index_parameters(
        index, 'nprobe=16' if 'IVF' in factory else
        ('efSearch=64' if 'HNSW' in factory else ''))
    removed = [5, 17, 1999]
    by_id = update_faiss(index, 2000, vectors[2000:], removed,
                         np.zeros((0, 16), np.float32), [])
    assert by_id == ('IVF' in factory)
    gone = RemovedIds(removed, 0 if by_id else len(removed))
    for query_row in (5, 17, 2003, 2009):
        rows, _ = shortlists(index, vectors, vectors[query_row][None], 10,
                             gone)[0]
        assert not set(rows) & set(removed)
        assert len(rows) >= 10
        if query_row >= 2000:
            assert query_row in rows


def test_exact_itm_index_update(setup, nano_config, nano_data, tmp_path):
    """An exact-ITM index (no ITC head) scores only the served rows."""
    config, checkpoint = save_model(
        copy.deepcopy(nano_config), str(tmp_path), 'nano')
    out = str(tmp_path / 'index')
    load_tool('misc/build_search_index.py').main([
        config, checkpoint, '--gallery', setup['base'].path, '--image-root',
        osp.join(nano_data['root'], 'images'), '--out', out, '--exact-itm'
    ])
    load_tool('misc/update_search_index.py').main(
        [out, '--add', setup['new'], '--remove', REMOVED])
    search = CatalogueSearch(SearchIndex(out))
    hits = _rows(search, NEW[0][1])
    assert {h['row'] for h in hits} == set(range(19)) - {0, 1, 6, 7}
    assert {h['product_id'] for h in hits} >= {'n1', '3'}
    captions = search.search_image(draw_product('red', 'circle', 0), 100,
                                   0)['captions']
    texts = {c['caption'] for c in captions}
    assert NEW[2][1] in texts and len(texts) == 8  # 8 - 2 old + 2 new


@pytest.mark.slow
def test_killed_update_leaves_a_usable_index(setup, tmp_path):
    """SIGKILL while the update writes its new files: the index opens and
    answers as the old version (or, had it switched, as the new one)."""
    out = _copy(setup, tmp_path)
    query = setup['base'].rows[0]['caption']
    expected = _rows(CatalogueSearch(SearchIndex(out)), query)
    process = subprocess.Popen([
        sys.executable,
        osp.join(REPO, 'tools', 'misc', 'update_search_index.py'), out,
        '--add', setup['new'], '--remove', REMOVED
    ],
                               cwd=REPO,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while process.poll() is None and not any(
            '.g1.' in name for name in os.listdir(out)):
        time.sleep(0.001)
    # Popen.kill is SIGKILL, and a no-op if the update has already ended.
    process.kill()
    process.wait()
    served = SearchIndex(out)
    hits = _rows(CatalogueSearch(served), query)
    if served.meta.get('generation') is None:  # killed before the switch
        assert hits == expected
    else:
        assert REMOVED not in {h['product_id'] for h in hits}
    meta = load_tool('misc/update_search_index.py').main(
        [out, '--remove', 'n1'] if served.meta.get('generation') else
        [out, '--add', setup['new'], '--remove', REMOVED])
    assert meta['generation'] == served.meta.get('generation', 0) + 1
