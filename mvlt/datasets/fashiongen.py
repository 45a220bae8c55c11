"""Fashion-Gen 2018 read directly from its HDF5 release files."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import h5py
import numpy as np
from mmengine.utils import is_abs

from mvlt.registry import DATASETS
from .base import MVLTBaseDataset
from .image_text import assign_product_index
from .label_map import LabelMap
from .products import product_table
from .transforms.loading import open_hdf5_file, read_image_rows

#: Keys every Fashion-Gen file needs besides the image and caption fields.
ID_KEY = 'input_productID'
CATEGORY_KEY = 'input_category'
SUBCATEGORY_KEY = 'input_subcategory'

#: Rows of a text column read per HDF5 call at construction.
_BLOCK_ROWS = 65536


def _is_text(dataset: h5py.Dataset) -> bool:
    """Fixed-length byte strings (the release) or variable-length strings."""
    return dataset.dtype.kind == 'S' or h5py.check_string_dtype(
        dataset.dtype) is not None


def decode_text(value: Union[bytes, str, np.bytes_],
                encoding: str = 'latin-1') -> str:
    """One text cell -> str (Fashion-Gen's bytes are Latin-1)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode(encoding).strip()
    return str(value).strip()


@DATASETS.register_module()
class FashionGenDataset(MVLTBaseDataset):
    """Fashion-Gen read row by row from ``fashiongen_256_256_{split}.h5``.

    The file holds ``input_image`` (N, 256, 256, 3) uint8 and text fields
    of shape (N, 1) as fixed-length Latin-1 byte strings
    (``input_description``, ``input_name``, ``input_category``,
    ``input_subcategory``, ...), ``input_productID`` (N, 1) int. Rows of one
    product (1-6 photos) share its id and description.

    At construction the product id, category and caption columns are read
    (captions once per distinct text: a product's description serves all
    its photos), through a handle that is closed again, so no handle crosses
    the fork into dataloader workers. Each worker then opens the file once
    (:func:`~mvlt.datasets.transforms.loading.open_hdf5`) and reads only
    image rows: a batch's rows at once (:meth:`prefetch`, for the
    DataLoader's batched fetch) or one per sample in the
    ``LoadFashionGenImage`` transform.

    A data info holds ``h5_path``, ``h5_row``, ``product_id``,
    ``product_index`` (contiguous per product), ``category_label``,
    ``subcategory_label``, ``sample_idx`` and ``caption``.

    Class ids come from, in this order: ``metainfo['categories']`` /
    ``metainfo['subcategories']`` (e.g. a checkpoint's ``dataset_meta``; id
    = position in the list), the names in ``label_map_from`` (the training
    split's file) or the names in this file (both: sorted names -> ids
    0..K-1; on the real training split 48 / 122). The names used are stored in
    :attr:`metainfo` (MMEngine saves the training split's metainfo in
    checkpoints as ``meta.dataset_meta``).

    Args:
        ann_file (str): The split's HDF5 file (joined to ``data_root``).
        caption_fields (Sequence[str]): Text fields that make the caption,
            joined by ``caption_separator``: ``('input_description',)``
            (default) or ``('input_name', 'input_description')``.
        caption_separator (str): Joins the caption fields; a field's own
            trailing full stop is dropped first.
        label_map_from (str, optional): HDF5 file whose category names make
            the label maps (the training split), joined to ``data_root``.
        unknown_label (str): A category name missing from the map:
            ``'error'`` raises (naming the file and row), ``'ignore'`` gives
            label -1.
        image_key (str): Name of the image data set.
        text_encoding (str): Encoding of the byte strings.
        **kwargs: ``MVLTBaseDataset`` arguments (``data_root``,
            ``pipeline``, ``metainfo``, ``test_mode``, ``indices``,
            ``on_bad_sample``, ...).
    """

    METAINFO = dict(categories=(), subcategories=())
    IMAGE_LOADER = 'LoadFashionGenImage'

    def __init__(self,
                 ann_file: str,
                 caption_fields: Sequence[str] = ('input_description', ),
                 caption_separator: str = '. ',
                 label_map_from: Optional[str] = None,
                 unknown_label: str = 'error',
                 image_key: str = 'input_image',
                 text_encoding: str = 'latin-1',
                 **kwargs) -> None:
        if isinstance(caption_fields, str):
            caption_fields = (caption_fields, )
        if not caption_fields:
            raise ValueError('caption_fields must name at least one text '
                             'field, e.g. ("input_description",).')
        if unknown_label not in ('error', 'ignore'):
            raise ValueError("unknown_label must be 'error' or 'ignore', got "
                             f'{unknown_label!r}.')
        self.caption_fields = tuple(caption_fields)
        self.caption_separator = caption_separator
        self.label_map_from = label_map_from
        self.unknown_label = unknown_label
        self.image_key = image_key
        self.text_encoding = text_encoding
        self._captions: List[str] = []
        self._prefetched: Dict[int, np.ndarray] = {}
        super().__init__(ann_file=ann_file, **kwargs)

    # ------------------------------------------------------------ reading
    def _resolve(self, path: str) -> str:
        if self.data_root and not is_abs(path):
            return osp.join(self.data_root, path)
        return path

    @staticmethod
    def _open(path: str) -> h5py.File:
        """A handle closed after reading the annotations (the one that
        serves samples is opened in each worker, :func:`open_hdf5`)."""
        return open_hdf5_file(
            path, 'Fashion-Gen file',
            'set data_root / ann_file (e.g. fashiongen_256_256_train.h5) or '
            'make a synthetic set with '
            'tools/misc/make_synthetic_fashiongen.py.')

    def _check_layout(self, f: h5py.File, path: str, text_keys: Sequence[str],
                      with_image: bool) -> int:
        """Check the keys, shapes and dtypes this data set reads; return N.
        """
        needed = list(text_keys) + [ID_KEY] * with_image + \
            [self.image_key] * with_image
        missing = [key for key in needed if key not in f]
        if missing:
            raise KeyError(
                f'{path} lacks the HDF5 data set(s) {missing}; a Fashion-Gen '
                f'file holds {self.image_key}, {ID_KEY}, {CATEGORY_KEY}, '
                f'{SUBCATEGORY_KEY} and the caption fields '
                f'{list(self.caption_fields)}. It holds: {sorted(f.keys())}.')
        reference_key = self.image_key if with_image else text_keys[0]
        num_rows = f[reference_key].shape[0] if f[reference_key].shape else 0
        if with_image:
            images = f[self.image_key]
            if images.ndim != 4 or images.shape[3] != 3 or \
                    images.dtype != np.uint8:
                raise ValueError(
                    f'{path}: {self.image_key} has shape {images.shape} and '
                    f'dtype {images.dtype}; expected (N, H, W, 3) uint8 RGB '
                    '(Fashion-Gen: (N, 256, 256, 3)).')
        for key in needed:
            if key == self.image_key:
                continue
            data = f[key]
            if key == ID_KEY:
                kind_ok = data.dtype.kind in 'iu'
                what = 'integers'
            else:
                kind_ok = _is_text(data)
                what = 'byte strings'
            if data.ndim != 2 or data.shape[1] != 1 or not kind_ok:
                raise ValueError(
                    f'{path}: {key} has shape {data.shape} and dtype '
                    f'{data.dtype}; expected ({num_rows}, 1) {what}, one per '
                    'image row.')
            if data.shape[0] != num_rows:
                raise ValueError(
                    f'{path}: {key} has {data.shape[0]} rows but '
                    f'{reference_key} has {num_rows}; row '
                    f'{min(data.shape[0], num_rows)} is missing in '
                    f'{key if data.shape[0] < num_rows else reference_key}.')
        if num_rows == 0:
            raise ValueError(f'{path} holds no rows.')
        return num_rows

    def _read_names(self, f: h5py.File,
                    key: str) -> Tuple[List[str], np.ndarray, np.ndarray]:
        """Distinct values of a (N, 1) text column, decoded, the value index
        of every row and the first row of every value.

        Read in blocks of rows, so that a column of long fixed-length byte
        strings never sits in memory whole.
        """
        column = f[key]
        ids = np.empty(column.shape[0], np.int64)
        table: Dict[bytes, int] = {}
        first_rows: List[int] = []
        for start in range(0, column.shape[0], _BLOCK_ROWS):
            values = column[start:start + _BLOCK_ROWS, 0]
            for offset, value in enumerate(values):
                raw = bytes(value) if isinstance(
                    value,
                    (bytes,
                     np.bytes_)) else str(value).encode(self.text_encoding)
                index = table.setdefault(raw, len(table))
                if index == len(first_rows):
                    first_rows.append(start + offset)
                ids[start + offset] = index
        names = [decode_text(raw, self.text_encoding) for raw in table]
        return names, ids, np.asarray(first_rows, np.int64)

    def _caption_table(self, f: h5py.File) -> Tuple[List[str], np.ndarray]:
        """Every distinct caption and the caption index of every row."""
        fields = [self._read_names(f, key) for key in self.caption_fields]
        keys = np.stack([ids for _, ids, _ in fields], axis=1)
        combos, index = np.unique(keys, axis=0, return_inverse=True)
        captions = []
        for combo in combos:
            parts = [fields[k][0][value] for k, value in enumerate(combo)]
            # 'Name. Description.' rather than 'Name.. Description.'.
            parts = [p.rstrip('. ') for p in parts[:-1] if p.rstrip('. ')] + \
                parts[-1:]
            captions.append(self.caption_separator.join(parts))
        return captions, index.reshape(-1)

    def _label_maps(self, f: h5py.File) -> Dict[str, LabelMap]:
        """Category / sub-category maps, recorded in the metainfo."""
        fields = dict(
            category=(CATEGORY_KEY, 'categories'),
            subcategory=(SUBCATEGORY_KEY, 'subcategories'))
        given = {
            field: tuple(self._metainfo.get(meta_key) or ())
            for field, (_, meta_key) in fields.items()
        }
        source = None
        if not all(given.values()) and self.label_map_from:
            source_path = self._resolve(self.label_map_from)
            with self._open(source_path) as source_file:
                self._check_layout(source_file, source_path,
                                   (CATEGORY_KEY, SUBCATEGORY_KEY), False)
                source = {
                    field: set(self._read_names(source_file, key)[0])
                    for field, (key, _) in fields.items()
                }
        maps = {}
        for field, (key, meta_key) in fields.items():
            if given[field]:
                names = given[field]
            elif source is not None:
                names = sorted(source[field])
            else:
                # A set: names that differ only in padding are one class.
                names = sorted(set(self._read_names(f, key)[0]))
            maps[field] = LabelMap(names, field, self.unknown_label)
            self._metainfo[meta_key] = maps[field].names
        return maps

    def load_data_list(self) -> List[dict]:
        path = self.ann_file
        # Closed at the end of the block: the handle that serves samples is
        # opened later, in each worker process.
        with self._open(path) as f:
            text_keys = tuple(
                dict.fromkeys(self.caption_fields +
                              (CATEGORY_KEY, SUBCATEGORY_KEY)))
            self._check_layout(f, path, text_keys, True)
            product_ids = f[ID_KEY][:, 0].astype(np.int64)
            maps = self._label_maps(f)
            labels = {}
            for field, key in (('category', CATEGORY_KEY), ('subcategory',
                                                            SUBCATEGORY_KEY)):
                names, inverse, first_rows = self._read_names(f, key)
                ids = np.array([
                    maps[field].encode(name, f'{path} row {row}')
                    for name, row in zip(names, first_rows)
                ], np.int64)
                labels[field] = ids[inverse]
            self._captions, caption_index = self._caption_table(f)
        # The file path and the caption text are added by get_data_info, not
        # repeated per row.
        data_list = [
            dict(
                h5_row=row,
                caption_index=int(caption_index[row]),
                product_id=int(product_ids[row]),
                category_label=int(labels['category'][row]),
                subcategory_label=int(labels['subcategory'][row]))
            for row in range(len(product_ids))
        ]
        assign_product_index(data_list)
        return data_list

    def get_data_info(self, idx: int) -> dict:
        """Data info of sample ``idx``, with its caption (and its image when
        :meth:`prefetch` read the batch's rows)."""
        info = super().get_data_info(idx)
        info['h5_path'] = self.ann_file
        info['caption'] = self._captions[info.pop('caption_index')]
        image = self._prefetched.get(info['h5_row'])
        if image is not None:
            info['h5_prefetched'] = (self.image_key, image)
        return info

    def prefetch(self, indices: Sequence[int]) -> None:
        """Read the image rows of a batch in one call
        (:func:`~mvlt.datasets.transforms.loading.read_image_rows`); on any
        error each sample reads its own row instead."""
        self._prefetched = {}
        if not indices:
            return
        rows = [
            super(FashionGenDataset, self).get_data_info(i)['h5_row']
            for i in indices
        ]
        try:
            self._prefetched = read_image_rows(self.ann_file, self.image_key,
                                               rows)
        except Exception:  # reported per sample under on_bad_sample
            self._prefetched = {}

    def product_table(self) -> Dict[str, np.ndarray]:
        """Per-row ``product_index``, ``product_id``, ``category_label`` and
        ``subcategory_label`` (N,) int64 arrays, without reading the file.

        Rows of one product share ``product_index`` and its caption; the
        caption of a row is ``get_data_info(row)['caption']``.
        """
        return product_table(self)
