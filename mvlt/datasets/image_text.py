"""A minimal image-caption data set read from a JSON-lines file."""
import json
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.fileio import get_local_path

from mvlt.registry import DATASETS
from .base import MVLTBaseDataset
from .label_map import LabelMap


def assign_product_index(data_list: List[dict]) -> None:
    """Give each distinct ``product_id`` a contiguous ``product_index``."""
    index = {}
    for info in data_list:
        info['product_index'] = index.setdefault(info['product_id'],
                                                 len(index))


@DATASETS.register_module()
class ImageTextDataset(MVLTBaseDataset):
    """Image-caption pairs listed one per line in a JSON-lines file.

    Each line is an object with ``img_path`` (relative to
    ``data_prefix['img_path']``), ``caption``, and optionally ``product_id``
    (default: the line number; photos of one product share it),
    ``category`` and ``subcategory`` (names).

    Class ids come from ``metainfo['categories']`` /
    ``metainfo['subcategories']`` when given (pass the training split's lists
    to a test split), else from the names in this file, sorted.

    Args:
        ann_file (str): The JSON-lines file.
        unknown_label (str): ``'error'`` or ``'ignore'`` for a category name
            that the map lacks.
        **kwargs: ``MVLTBaseDataset`` arguments (``on_bad_sample``,
            ``data_root``, ``data_prefix``, ``pipeline``, ``metainfo``,
            ``test_mode``, ...).
    """

    METAINFO = dict(categories=(), subcategories=())

    def __init__(self,
                 ann_file: str,
                 unknown_label: str = 'error',
                 **kwargs) -> None:
        self.unknown_label = unknown_label
        super().__init__(ann_file=ann_file, **kwargs)

    def _read_rows(self) -> List[dict]:
        rows = []
        with get_local_path(self.ann_file) as path, open(path, 'rb') as f:
            for line_no, raw in enumerate(f, start=1):
                line = self._decode_line(raw, line_no)
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(
                        f'{self.ann_file}:{line_no}: not valid JSON ({err.msg}'
                        f' at column {err.colno}); every line must be one '
                        'JSON object with img_path and caption.') from None
                if not isinstance(row, dict):
                    raise ValueError(
                        f'{self.ann_file}:{line_no}: expected a JSON object, '
                        f'got {type(row).__name__}.')
                missing = [k for k in ('img_path', 'caption') if k not in row]
                if missing:
                    raise KeyError(f'{self.ann_file}:{line_no}: missing '
                                   f'{missing}; each line needs img_path and '
                                   'caption.')
                row['_line'] = line_no
                rows.append(row)
        if not rows:
            raise ValueError(f'{self.ann_file} holds no samples.')
        return rows

    def _decode_line(self, raw: bytes, line_no: int) -> str:
        """One line as text; a clear error for a file that is not UTF-8."""
        try:
            # utf-8-sig drops the byte-order mark some editors write first.
            return raw.decode('utf-8-sig' if line_no == 1 else 'utf-8')
        except UnicodeDecodeError as err:
            raise ValueError(
                f'{self.ann_file}:{line_no}: not UTF-8 text (byte '
                f'{raw[err.start:err.start + 1]!r} at column {err.start + 1}'
                '); save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 '
                'in.jsonl > out.jsonl`.') from None

    def _label_map(self, rows: List[dict], field: str,
                   meta_key: str) -> Optional[LabelMap]:
        given: Sequence[str] = self._metainfo.get(meta_key) or ()
        if given:
            return LabelMap(given, field, self.unknown_label)
        if any(field in row for row in rows):
            label_map = LabelMap.from_values(
                (row[field] for row in rows if field in row), field,
                self.unknown_label)
            self._metainfo[meta_key] = label_map.names
            return label_map
        return None

    def load_data_list(self) -> List[dict]:
        rows = self._read_rows()
        maps = dict(
            category=self._label_map(rows, 'category', 'categories'),
            subcategory=self._label_map(rows, 'subcategory', 'subcategories'))
        prefix = self.data_prefix.get('img_path', '')
        data_list = []
        for row in rows:
            info = dict(
                img_path=osp.join(prefix, row['img_path']),
                caption=row['caption'],
                product_id=row.get('product_id', row['_line']))
            for field, label_map in maps.items():
                if label_map is not None and field in row:
                    info[f'{field}_label'] = label_map.encode(
                        row[field], f"{self.ann_file}:{row['_line']}")
            data_list.append(info)
        assign_product_index(data_list)
        return data_list
