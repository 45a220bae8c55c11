"""The packed storage of a search index: item table (SQLite) and thumbnail
packs; an index of the old format or with a damaged table / pack is refused
when opened."""
import json
import os
import os.path as osp
import shutil
import sqlite3

import cv2
import numpy as np
import pytest

from mvlt.apis import IndexMismatchError, SearchIndex
from mvlt.apis.ann_files import IndexFileError
from mvlt.apis.item_store import ITEMS_DB, ItemStore, pack_name
from mvlt.apis.item_store_writer import write_item_store
from mvlt.visualization import encode_rgb_image

ITEMS = [
    dict(product_id='p0', caption='a red dress', category='DRESSES'),
    dict(product_id='p0', caption='a red dress', category='DRESSES'),
    dict(product_id='p1', caption='blue jeans', category='JEANS'),
]


def _thumb(value: int) -> bytes:
    return encode_rgb_image(np.full((8, 6, 3), value, np.uint8), '.jpg')


@pytest.fixture
def store_dir(tmp_path):
    thumbs = [_thumb(40 * i) for i in range(len(ITEMS))]
    store = write_item_store(str(tmp_path), zip(ITEMS, thumbs))
    return str(tmp_path), store, thumbs


def test_items_and_thumbnails_read_back(store_dir):
    root, store, thumbs = store_dir
    assert store['items'] == ITEMS_DB
    assert [p['file'] for p in store['packs']] == [pack_name(0)]
    assert os.listdir(osp.join(root, 'thumbs')) == ['pack-000000.bin']
    table = ItemStore(root, store, 3, 'REBUILD')
    assert len(table) == 3 and table.num_captions == 2
    assert table.num_products == 2 and table.max_photos == 2
    assert table[2] == dict(
        row=2,
        product_id='p1',
        caption='blue jeans',
        category='JEANS',
        thumbnail='thumbs/000002.jpg')
    assert [i['product_id'] for i in table] == ['p0', 'p0', 'p1']
    assert table.product_rows('p0') == [0, 1]
    assert table.caption(1) == 'blue jeans' and table.caption_rows(0) == [0, 1]
    assert [table.thumbnail(r) for r in range(3)] == thumbs
    assert cv2.imdecode(np.frombuffer(table.thumbnail(0), np.uint8),
                        cv2.IMREAD_COLOR).shape == (8, 6, 3)
    assert table.thumbnail(3) is None
    with pytest.raises(IndexError):
        table[5]


def test_damaged_table_or_pack_is_refused(store_dir, tmp_path_factory):
    root, store, _ = store_dir

    def damaged(change) -> str:
        copy = str(tmp_path_factory.mktemp('copy') / 'index')
        shutil.copytree(root, copy)
        change(copy)
        with pytest.raises(IndexFileError) as err:
            table = ItemStore(copy, store, 3, 'REBUILD-COMMAND')
            table.thumbnail(1)
        assert 'REBUILD-COMMAND' in str(err.value)
        return str(err.value)

    def truncate(path: str, size: int) -> None:
        with open(path, 'r+b') as f:
            f.truncate(size)

    db = lambda d: osp.join(d, ITEMS_DB)  # noqa: E731
    pack = lambda d: osp.join(d, pack_name(0))  # noqa: E731
    assert 'items.sqlite (item table) is missing' in damaged(
        lambda d: os.remove(db(d)))
    assert 'truncated' in damaged(lambda d: truncate(db(d), 4096))
    assert 'its header says' in damaged(
        lambda d: truncate(db(d), osp.getsize(db(d)) - 4096))
    assert 'not a readable item table' in damaged(
        lambda d: open(db(d), 'wb').write(b'not sqlite' * 500))
    assert 'not a readable item table' in damaged(  # SQLite, not ours
        lambda d: sqlite3.connect(db(d)).execute('DROP TABLE info'))
    assert 'pack-000000.bin (thumbnail pack) has' in damaged(
        lambda d: truncate(pack(d), 10))
    assert 'pack-000000.bin (thumbnail pack) is missing' in damaged(
        lambda d: os.remove(pack(d)))

    def flip(d: str) -> None:  # same size, other bytes
        with open(pack(d), 'r+b') as f:
            f.seek(store['packs'][0]['bytes'] // 2)
            f.write(b'\0\0\0\0')

    assert 'is damaged (CRC-32' in damaged(flip)

    def fewer_rows(d: str) -> None:
        with sqlite3.connect(db(d)) as con:
            con.execute("UPDATE info SET value=2 WHERE key='rows'")

    assert 'holds 2 rows, not 3' in damaged(fewer_rows)


def test_old_format_index_is_refused(tmp_path):
    """An index of format 1 (items.jsonl, a thumbnail file per item) is
    refused with the command that rebuilds it."""
    meta = dict(
        format=1,
        mode='itc',
        config=dict(source='configs/x.py', options={}),
        checkpoint=dict(path='/ckpt/x.pth'),
        gallery=dict(kind='jsonl', path='/data/test.jsonl'))
    (tmp_path / 'meta.json').write_text(json.dumps(meta))
    with pytest.raises(IndexMismatchError) as err:
        SearchIndex(str(tmp_path))
    message = str(err.value)
    assert 'format 1' in message and 'reads format 2' in message
    assert 'tools/misc/build_search_index.py configs/x.py /ckpt/x.pth ' \
        '--gallery jsonl:/data/test.jsonl' in message
