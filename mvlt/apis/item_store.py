"""The item table and thumbnails of a search index, stored so that opening
an index costs the same at a thousand items and at a million.

* ``items.sqlite`` (SQLite, Python's standard library): table ``items``
  (``row`` = the faiss id and the row of ``images.npy``, ``product_id``,
  ``caption_id``, ``category``, where its thumbnail lies, ``live``: 0 once
  the product was removed by an update), indexed by row, product id and
  caption; table ``captions`` (``id`` = the row of ``captions.npy``, the
  text, ``live``); table ``info`` (counts). Served read-only
  (``mode=ro&immutable=1``: no locks, no journal); rows are read by key when
  a result is shown, never all at start-up.
* ``thumbs/pack-NNNNNN.bin``: JPEG thumbnails concatenated, up to
  :data:`PACK_BYTES` a file; the item table holds each one's pack, offset,
  size and CRC-32. Packs are append-only: an update writes a new pack and
  never rewrites the old ones (thumbnails of removed items stay until a
  rebuild), so a killed update leaves the old index whole.

  Why packs and not a SQLite BLOB column: measured (2-vCPU AMD EPYC Zen 4,
  AVX-512, machine not quiet, load 5; 100K thumbnails of 4 KB) the two are
  alike: writing 3.6 s to a pack (+ offsets table) and 3.4 s to BLOBs,
  a random read 23 us and 26 us. The deciding reason is the update: with
  BLOBs in the table, a crash-safe update (new file, then rename) copies
  every thumbnail (4 GB at 1M items); with packs
  it copies only the ~100 MB table. A thumbnail is read with ``os.pread``
  (no shared file position; safe across threads and after ``fork``).

A missing, truncated or foreign table or pack is refused when the index is
opened (:class:`~mvlt.apis.ann_files.IndexFileError`, naming the file and the
rebuild command); a thumbnail whose bytes no longer match its CRC-32 is
refused when read.
"""
import json
import os
import os.path as osp
import sqlite3
import struct
import threading
import zlib
from typing import Iterator, List, Optional, Sequence

from .ann_files import IndexFileError

ITEMS_DB = 'items.sqlite'
PACK_DIR = 'thumbs'
#: Largest pack file: a few files per million thumbnails (4 GB at 4 KB
#: each), small enough to copy or sync one at a time.
PACK_BYTES = 1 << 30

#: Counts in the table ``info``.
INFO_KEYS = ('rows', 'captions', 'live', 'products', 'max_photos')


def pack_name(pack: int) -> str:
    """The path of pack ``pack`` relative to the index folder."""
    return f'{PACK_DIR}/pack-{pack:06d}.bin'


def thumbnail_url(row: int) -> str:
    """Where the page and the JSON API show row ``row``'s thumbnail."""
    return f'thumbs/{row:06d}.jpg'


def index_captions(index_dir: str) -> List[str]:
    """The served captions of an index folder, by id, read without the
    model (e.g. queries for a load test)."""
    with open(osp.join(index_dir, 'meta.json'), encoding='utf-8') as f:
        meta = json.load(f)
    store = ItemStore(index_dir, meta['store'], meta['num_items'],
                      'tools/misc/build_search_index.py')
    return store.live_captions()


class ItemStore:
    """An index's item table and thumbnails, opened read-only.

    ``len(store)`` is the number of row ids (removed rows included: ids are
    never reused); ``store[row]`` is the item dict the API returns:
    ``row``, ``product_id``, ``caption``, ``category``, ``thumbnail`` (its
    URL path); iterating yields every row in order.

    Args:
        index_dir: The index folder.
        store: ``meta['store']``.
        num_rows: Rows the table must hold (``meta['num_items']``).
        rebuild: The command that rebuilds the index (for messages).

    Raises:
        IndexFileError: The table or a pack is missing, truncated, not what
            the metadata records, or not a SQLite file.
    """

    def __init__(self, index_dir: str, store: dict, num_rows: int,
                 rebuild: str) -> None:
        self.index_dir, self.rebuild = index_dir, rebuild
        self.path = osp.join(index_dir, store['items'])
        self._lock = threading.Lock()
        self._db = self._connect(num_rows)
        self._packs = []
        for pack in store['packs']:
            path = osp.join(index_dir, pack['file'])
            size = osp.getsize(path) if osp.isfile(path) else None
            if size != pack['bytes']:
                what = 'is missing' if size is None else (
                    f'has {size} bytes, not {pack["bytes"]}')
                raise IndexFileError(
                    f'{path} (thumbnail pack) {what}; the index is damaged '
                    f'or from another build. Rebuild it: {rebuild}')
            self._packs.append((path, os.open(path, os.O_RDONLY)))
        self.num_rows = num_rows
        info = dict(self._query('SELECT key, value FROM info'))
        #: Distinct captions (the caption table's rows, removed included),
        #: served rows, products and the most photos of one product.
        self.num_captions, self.num_live = info['captions'], info['live']
        self.num_products = info['products']
        self.max_photos = info['max_photos']

    def _refuse(self, what: str) -> IndexFileError:
        return IndexFileError(
            f'{self.path} (item table) {what}; the index is damaged or from '
            f'another build. Rebuild it: {self.rebuild}')

    def _connect(self, num_rows: int) -> sqlite3.Connection:
        if not osp.isfile(self.path):
            raise self._refuse('is missing')
        # The header's page size and page count (sqlite.org/fileformat.html,
        # offsets 16 and 28) against the file's size: a truncated copy is
        # caught here, not when a query first reaches a missing page.
        with open(self.path, 'rb') as f:
            header = f.read(100)
        if len(header) < 100 or not header.startswith(b'SQLite format 3\0'):
            raise self._refuse('is not a readable item table (no SQLite '
                               'header)')
        page = struct.unpack('>H', header[16:18])[0]
        expected = (65536 if page == 1 else page) * struct.unpack(
            '>I', header[28:32])[0]
        if osp.getsize(self.path) != expected:
            raise self._refuse(f'has {osp.getsize(self.path)} bytes, its '
                               f'header says {expected} (truncated)')
        try:
            db = sqlite3.connect(
                f'file:{self.path}?mode=ro&immutable=1',
                uri=True,
                check_same_thread=False)
            info = dict(db.execute('SELECT key, value FROM info'))
            rows = [info[key] for key in INFO_KEYS][0]
        except (sqlite3.DatabaseError, KeyError) as err:
            raise self._refuse(f'is not a readable item table ({err})') \
                from None
        if rows != num_rows:
            raise self._refuse(f'holds {rows} rows, not {num_rows}')
        return db

    def _query(self, sql: str, args: tuple = ()) -> list:
        with self._lock:  # one connection, shared by the server's threads
            return self._db.execute(sql, args).fetchall()

    def _info(self, key: str) -> int:
        return self._query('SELECT value FROM info WHERE key=?', (key, ))[0][0]

    def __len__(self) -> int:
        return self.num_rows

    def _item(self, row: int, product: str, caption: str,
              category: str) -> dict:
        return dict(
            row=row,
            product_id=product,
            caption=caption,
            category=category,
            thumbnail=thumbnail_url(row))

    _SELECT = ('SELECT row, product_id, caption, category FROM items JOIN '
               'captions ON captions.id = caption_id ')

    def __getitem__(self, row: int) -> dict:
        found = self._query(self._SELECT + 'WHERE row=?', (int(row), ))
        if not found:
            raise IndexError(f'No row {row} in {self.path}.')
        return self._item(*found[0])

    def __iter__(self) -> Iterator[dict]:
        for first in range(0, self.num_rows, 4096):
            found = self._query(
                self._SELECT + 'WHERE row >= ? AND row < ? ORDER BY row',
                (first, first + 4096))
            for item in found:
                yield self._item(*item)

    def is_live(self, row: int) -> bool:
        """Whether row ``row`` is served (not removed by an update)."""
        found = self._query('SELECT live FROM items WHERE row=?', (int(row), ))
        return bool(found and found[0][0])

    def product_rows(self, product_id: str) -> List[int]:
        """Served rows (photos) of a product, ascending."""
        return [
            r for r, in self._query(
                'SELECT row FROM items WHERE product_id=? AND live=1 '
                'ORDER BY row', (product_id, ))
        ]

    def caption(self, caption_id: int) -> str:
        """The text of caption ``caption_id`` (a row of the caption table)."""
        return self._query('SELECT caption FROM captions WHERE id=?',
                           (int(caption_id), ))[0][0]

    def caption_id(self, caption: str) -> int:
        """The id of a caption's text (KeyError if no item carries it)."""
        found = self._query('SELECT id FROM captions WHERE caption=?',
                            (caption, ))
        if not found:
            raise KeyError(caption)
        return found[0][0]

    def caption_rows(self, caption_id: int) -> List[int]:
        """Served rows that carry caption ``caption_id``, ascending."""
        return [
            r for r, in self._query(
                'SELECT row FROM items WHERE caption_id=? AND live=1 '
                'ORDER BY row', (int(caption_id), ))
        ]

    def live_captions(self) -> List[str]:
        """Every served caption, by id (exact-ITM indexes: small)."""
        return [
            c for c, in self._query(
                'SELECT caption FROM captions WHERE live=1 ORDER BY id')
        ]

    def removed(self, table: str = 'items') -> List[int]:
        """Ids removed by updates (``items`` rows or ``captions`` ids)."""
        key = 'row' if table == 'items' else 'id'
        return [r for r, in self._query(f'SELECT {key} FROM {table} '
                                        'WHERE live=0 ORDER BY 1')]

    def thumbnail(self, row: int) -> Optional[bytes]:
        """Row ``row``'s JPEG thumbnail; None for a row that is not served.

        Raises:
            IndexFileError: The bytes in the pack do not match the CRC-32
                recorded (a damaged pack; the message names it).
        """
        found = self._query(
            'SELECT pack, offset, size, crc FROM items WHERE row=? AND '
            'live=1', (int(row), ))
        if not found or found[0][0] is None:
            return None
        pack, offset, size, crc = found[0]
        path, fd = self._packs[pack]
        data = os.pread(fd, size, offset)
        if zlib.crc32(data) != crc:
            raise IndexFileError(
                f'{path}: the thumbnail of row {row} is damaged (CRC-32 '
                f'differs). Rebuild the index: {self.rebuild}')
        return data

    def sources(self, rows: Sequence[int]) -> List[tuple]:
        """(source, source_row) of each row: which gallery (0: the built
        one, k: the k-th added) and which of its rows holds its image."""
        found = {}
        for first in range(0, len(rows), 512):
            chunk = [int(r) for r in rows[first:first + 512]]
            found.update((r, (s, sr)) for r, s, sr in self._query(
                'SELECT row, source, source_row FROM items WHERE row IN '
                f'({",".join("?" * len(chunk))})', tuple(chunk)))
        return [found[int(r)] for r in rows]

    def source_items(self, source: int) -> List[dict]:
        """The rows of gallery ``source`` (``product_id``, ``caption``,
        ``category``), in its order (removed ones included)."""
        return [
            dict(product_id=p, caption=c, category=g)
            for p, c, g in self._query(
                'SELECT product_id, caption, category FROM items JOIN '
                'captions ON captions.id = caption_id WHERE source=? ORDER '
                'BY source_row', (source, ))
        ]

    def __del__(self) -> None:
        for _, fd in getattr(self, '_packs', ()):
            os.close(fd)
