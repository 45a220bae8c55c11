"""Writing the item table and thumbnail packs of a search index (the
format: :mod:`mvlt.apis.item_store`): a new index's
(:func:`write_item_store`) or an update's (:class:`ItemWriter` on a copy of
the table, :class:`PackWriter` from the next pack number).
"""
import os
import os.path as osp
import sqlite3
import zlib
from typing import Dict, Iterable, List, Sequence, Tuple

from .item_store import ITEMS_DB, PACK_BYTES, PACK_DIR, pack_name

SCHEMA = """
CREATE TABLE items(row INTEGER PRIMARY KEY, product_id TEXT NOT NULL,
    caption_id INTEGER NOT NULL, category TEXT NOT NULL, pack INTEGER,
    offset INTEGER, size INTEGER, crc INTEGER, live INTEGER NOT NULL,
    source INTEGER NOT NULL DEFAULT 0, source_row INTEGER NOT NULL);
CREATE INDEX items_product ON items(product_id, row);
CREATE INDEX items_caption ON items(caption_id, row);
CREATE TABLE captions(id INTEGER PRIMARY KEY, caption TEXT NOT NULL UNIQUE,
    live INTEGER NOT NULL);
CREATE TABLE info(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class PackWriter:
    """Append thumbnails to pack files ``first_pack, first_pack + 1, ...``
    (each written as ``NAME.tmp`` and renamed by :meth:`close`).

    Returns from :meth:`add`: (pack, offset, size, crc32) for the table.
    """

    def __init__(self, index_dir: str, first_pack: int = 0) -> None:
        self.index_dir, self.pack = index_dir, first_pack
        os.makedirs(osp.join(index_dir, PACK_DIR), exist_ok=True)
        self.written: List[dict] = []
        self._file = None

    def _open(self) -> None:
        path = osp.join(self.index_dir, pack_name(self.pack))
        self._file = open(path + '.tmp', 'wb')

    def _finish(self) -> None:
        name = pack_name(self.pack)
        self._file.flush()
        os.fsync(self._file.fileno())
        size = self._file.tell()
        self._file.close()
        os.replace(
            osp.join(self.index_dir, name) + '.tmp',
            osp.join(self.index_dir, name))
        self.written.append(dict(file=name, bytes=size))
        self._file = None
        self.pack += 1

    def add(self, data: bytes) -> tuple:
        if self._file is not None and \
                self._file.tell() + len(data) > PACK_BYTES:
            self._finish()
        if self._file is None:
            self._open()
        offset = self._file.tell()
        self._file.write(data)
        return self.pack, offset, len(data), zlib.crc32(data)

    def close(self) -> List[dict]:
        """Finish the open pack; the packs written (``file``, ``bytes``)."""
        if self._file is not None:
            self._finish()
        return self.written


class ItemWriter:
    """Write (or extend, for an update) an ``items.sqlite`` at ``path``.

    Args:
        path: The new table file (an update copies the old one there first).
        create: Make the schema (a new index).
    """

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute('PRAGMA journal_mode=OFF')  # a temp file: renamed
        self.db.execute('PRAGMA synchronous=OFF')  # when whole (synced)
        if create:
            self.db.executescript('BEGIN;' + SCHEMA)
        else:
            self.db.execute('BEGIN')
        self._captions: Dict[str, int] = {}
        dead = set()
        for caption, id_, live in self.db.execute(
                'SELECT caption, id, live FROM captions ORDER BY id'):
            self._captions[caption] = id_
            if not live:
                dead.add(id_)
        #: Captions before this writer (ids of new ones start here), and
        #: ids of removed captions that new items carry again.
        self.num_captions, self._dead = len(self._captions), dead
        self.revived: List[int] = []

    def caption_id(self, caption: str) -> int:
        """The caption's id, a new one (next row of the captions table) for
        a new text; a removed caption that an item carries again is served
        again (:attr:`revived`)."""
        if caption in self._captions:
            id_ = self._captions[caption]
            if id_ in self._dead:
                self._dead.discard(id_)
                self.revived.append(id_)
                self.db.execute('UPDATE captions SET live=1 WHERE id=?',
                                (id_, ))
            return id_
        new = len(self._captions)
        self._captions[caption] = new
        self.db.execute('INSERT INTO captions VALUES (?, ?, 1)',
                        (new, caption))
        return new

    def new_captions(self) -> List[str]:
        """Texts of the captions added by this writer, by id."""
        return list(self._captions)[self.num_captions:]

    def remove_rows(self, rows: Sequence[int]) -> List[int]:
        """Stop serving ``rows``; the ids of their captions (to check with
        :meth:`dead_captions` once the new items are in)."""
        captions = set()
        for row in rows:
            self.db.execute('UPDATE items SET live=0 WHERE row=?', (row, ))
            captions.update(c for c, in self.db.execute(
                'SELECT caption_id FROM items WHERE row=?', (row, )))
        return sorted(captions)

    def dead_captions(self, ids: Sequence[int]) -> List[int]:
        """Of caption ``ids``, those no served row carries any more: marked
        removed and returned."""
        dead = []
        for id_ in ids:
            if not self.db.execute(
                    'SELECT 1 FROM items WHERE caption_id=? AND live=1 '
                    'LIMIT 1', (id_, )).fetchone():
                self.db.execute('UPDATE captions SET live=0 WHERE id=?',
                                (id_, ))
                self._dead.add(id_)
                dead.append(id_)
        return dead

    def removed_count(self, table: str) -> int:
        """Rows of ``items`` / ``captions`` not served."""
        return self.db.execute(
            f'SELECT COUNT(*) FROM {table} WHERE live=0').fetchone()[0]

    def add(self, row: int, item: dict, thumb: Sequence[int], source: int,
            source_row: int) -> None:
        """Row ``row``: ``item`` (``product_id``, ``caption``, ``category``)
        with its thumbnail's (pack, offset, size, crc32)."""
        self.db.execute(
            'INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)',
            (row, item['product_id'], self.caption_id(item['caption']),
             item.get('category', ''), *thumb, source, source_row))

    def close(self) -> None:
        """Record the counts (``info``), commit and close the file."""
        rows = self.db.execute('SELECT COUNT(*) FROM items').fetchone()[0]
        live, products, most = self.db.execute(
            'SELECT SUM(n), COUNT(*), MAX(n) FROM (SELECT COUNT(*) AS n FROM '
            'items WHERE live=1 GROUP BY product_id)').fetchone()
        counts = dict(
            rows=rows,
            captions=len(self._captions),
            live=live or 0,
            products=products,
            max_photos=most or 1)
        self.db.executemany('INSERT OR REPLACE INTO info VALUES (?, ?)',
                            counts.items())
        self.db.execute('COMMIT')
        self.db.close()
        with open(self.path, 'rb') as f:
            os.fsync(f.fileno())


def write_item_store(index_dir: str,
                     rows: Iterable[Tuple[dict, bytes]]) -> dict:
    """Write ``items.sqlite`` and the thumbnail packs of a new index.

    Args:
        index_dir: The index folder.
        rows: Per row in order: the item (``product_id``, ``caption``,
            ``category``) and its JPEG thumbnail.

    Returns:
        dict: ``meta['store']``: ``items`` (the table file), ``packs``
        (``file``, ``bytes``).
    """
    path = osp.join(index_dir, ITEMS_DB)
    if osp.exists(path + '.tmp'):
        os.remove(path + '.tmp')
    table, packs = ItemWriter(path + '.tmp'), PackWriter(index_dir)
    for row, (item, thumb) in enumerate(rows):
        table.add(row, item, packs.add(thumb), 0, row)
    table.close()
    store = dict(items=ITEMS_DB, packs=packs.close())
    os.replace(path + '.tmp', path)
    return store
