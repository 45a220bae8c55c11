"""Product galleries for the catalogue search: rows of an image, a product
id, a caption and a category, read from a Fashion-Gen HDF5 split, a JSON-lines
image-caption file, image-caption tar shards (their ``manifest.json``) or a
folder of images.

A gallery is named by a *spec*: a path, optionally prefixed with its kind
(``fashiongen:``, ``jsonl:``, ``shards:``, ``folder:``); without a prefix
the kind follows from the path (``.h5`` / ``.hdf5``, a file named
``manifest.json``, ``.jsonl`` / ``.json``, a directory).
"""
import hashlib
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from mvlt.image import ImageDecodeError, decode_image
from mvlt.utils.hdf5 import read_image_rows

#: Kinds of gallery and the path endings that select them.
GALLERY_KINDS = {
    'fashiongen': ('.h5', '.hdf5'),
    'shards': ('manifest.json', ),
    'jsonl': ('.jsonl', '.json'),
    'folder': (),
}
#: Files a folder gallery takes as images (what mvlt.image.decode_image reads).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff',
                    '.gif')
_CHUNK = 1 << 20
#: Tar shards a shards gallery keeps open (memory maps): all of a
#: catalogue's up to this many. Opening a shard of 10,000 photos rescans
#: its tar headers (0.26-0.39 s, measured); with the data set's LRU of 8,
#: a search's ITM re-rank of 16 photos spread over a 10-shard catalogue of
#: 100K reopened shards on nearly every read (re-rank p50 579 ms, the
#: ITC search 19 ms). Each open shard holds one file descriptor.
MAX_OPEN_SHARDS = 256


def parse_gallery_spec(spec: str) -> Tuple[str, str]:
    """``'[kind:]path'`` -> ``(kind, absolute path)``.

    Raises:
        ValueError: An unknown kind, or a path whose kind cannot be told.
        FileNotFoundError: The path does not exist.
    """
    kind, sep, path = spec.partition(':')
    if not sep or kind not in GALLERY_KINDS:
        kind, path = None, spec
    path = osp.abspath(osp.expanduser(path))
    if not osp.exists(path):
        raise FileNotFoundError(
            f'Gallery {spec!r}: {path} does not exist. Give a Fashion-Gen '
            'HDF5 split (.h5), a JSON-lines file (.jsonl) or a folder of '
            'images.')
    if kind is None:
        if osp.isdir(path):
            kind = 'folder'
        else:
            ending = osp.splitext(path)[1].lower()
            if osp.basename(path) == 'manifest.json':
                ending = 'manifest.json'
            kind = next(
                (k for k, ends in GALLERY_KINDS.items() if ending in ends),
                None)
        if kind is None:
            raise ValueError(
                f'Gallery {spec!r}: cannot tell its kind from the name; '
                'prefix it with fashiongen:, jsonl:, shards: or folder:.')
    if (kind == 'folder') != osp.isdir(path):
        raise ValueError(f'Gallery {spec!r}: a {kind} gallery must be a '
                         f'{"folder" if kind == "folder" else "file"}.')
    return kind, path


def _update_with_file(digest, path: str) -> None:
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_CHUNK), b''):
            digest.update(block)


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    _update_with_file(digest, path)
    return digest.hexdigest()


class Gallery:
    """The rows of a product gallery, read from its source on demand.

    Attributes:
        kind (str): ``'fashiongen'``, ``'jsonl'``, ``'shards'`` or
            ``'folder'``.
        path (str): The source (absolute).
        image_root (str, optional): Folder the JSON-lines ``img_path`` values
            are relative to.
        rows (list[dict]): Per row: ``product_id`` (str), ``caption`` and
            ``category`` (str, may be empty).
    """

    def __init__(self,
                 kind: str,
                 path: str,
                 rows: List[dict],
                 image_root: Optional[str],
                 files: Sequence[str],
                 skipped: Sequence[Tuple[str, str]] = ()) -> None:
        self.kind = kind
        self.path = path
        self.rows = rows
        self.image_root = image_root
        self._files = list(files)
        #: (file, reason) of the unreadable images left out under
        #: ``on_bad_sample='skip'``.
        self.skipped = list(skipped)
        self._h5_rows: Optional[np.ndarray] = None
        #: The HDF5 data set of the images (Fashion-Gen's name).
        self.image_key = 'input_image'
        self._shards = None  # a ShardDataset, opened on first read

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def spec(self) -> Dict[str, Optional[str]]:
        """What :func:`open_gallery` needs to open this gallery again
        (``exclude``: the skipped files, relative to the gallery)."""
        base = self.path if self.kind == 'folder' else self.image_root
        return dict(
            kind=self.kind,
            path=self.path,
            image_root=self.image_root,
            exclude=[osp.relpath(file, base) for file, _ in self.skipped])

    def read(self, row: int) -> np.ndarray:
        """The image of ``row`` as RGB uint8 (H, W, 3), decoded by
        :func:`mvlt.image.decode_image` (the loaders' decoder).

        Raises:
            IndexError: No such row.
            ImageDecodeError: An unreadable image (the message names it).
        """
        if not 0 <= row < len(self.rows):
            raise IndexError(f'Row {row} is outside the gallery '
                             f'({len(self.rows)} rows).')
        if self.kind == 'fashiongen':
            return read_image_rows(self.path, self.image_key, [row])[row]
        if self.kind == 'shards':
            if self._shards is None:
                self._shards = _shard_dataset(self.path)
            info = self._shards.get_data_info(row)
            return decode_image(info['img_bytes'], name=info['img_path'])
        return decode_image(self._files[row])

    def read_many(self, rows: Sequence[int]) -> List[np.ndarray]:
        """Images of several rows (see :meth:`read`); HDF5 rows are read
        together (:func:`mvlt.utils.hdf5.read_image_rows`,
        the data sets' reader)."""
        rows = [int(r) for r in rows]
        if self.kind == 'fashiongen' and rows:
            for row in rows:
                if not 0 <= row < len(self.rows):
                    raise IndexError(f'Row {row} is outside the gallery '
                                     f'({len(self.rows)} rows).')
            images = read_image_rows(self.path, self.image_key, rows)
            return [images[r] for r in rows]
        return [self.read(r) for r in rows]

    def content_hash(self) -> str:
        """SHA-256 over everything the rows come from: the HDF5 file; the
        JSON-lines file and its images; a folder's image and caption files
        with their relative paths; a shard manifest (it holds every shard's
        SHA-256)."""
        digest = hashlib.sha256()
        if self.kind in ('fashiongen', 'jsonl', 'shards'):
            _update_with_file(digest, self.path)
        base = self.path if self.kind == 'folder' else self.image_root
        for path in self._files:
            digest.update(osp.relpath(path, base).encode('utf-8') + b'\0')
            _update_with_file(digest, path)
            sidecar = osp.splitext(path)[0] + '.txt'
            if self.kind == 'folder' and osp.isfile(sidecar):
                _update_with_file(digest, sidecar)
        return digest.hexdigest()


def _dataset_rows(dataset) -> Iterator[Tuple[dict, dict]]:
    """Each sample's data info and gallery row: product id, caption and
    category name ('' where the data set names none)."""
    names = dataset.metainfo.get('categories') or ()
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        label = info.get('category_label', -1)
        yield info, dict(
            product_id=str(info['product_id']),
            caption=info['caption'],
            category=names[label] if 0 <= label < len(names) else '')


def _fashiongen_rows(path: str, caption_fields: Sequence[str]) -> List[dict]:
    # The data sets need torch (MMEngine's BaseDataset); imported here so
    # that reading a gallery's images (the torch-free ONNX Runtime search)
    # does not.
    from mvlt.datasets import FashionGenDataset
    dataset = FashionGenDataset(
        ann_file=path,
        caption_fields=tuple(caption_fields),
        pipeline=[],
        test_mode=True)
    return [row for _, row in _dataset_rows(dataset)]


def _jsonl_rows(path: str, image_root: str) -> Tuple[List[dict], List[str]]:
    from mvlt.datasets import ImageTextDataset
    dataset = ImageTextDataset(
        ann_file=path,
        data_prefix=dict(img_path=image_root),
        pipeline=[],
        test_mode=True)
    rows, files = [], []
    for index, (info, row) in enumerate(_dataset_rows(dataset)):
        if not osp.isfile(info['img_path']):
            raise FileNotFoundError(
                f'{path}: image {info["img_path"]} of line {index + 1} does '
                'not exist; pass --image-root, the folder the img_path '
                'values are relative to.')
        files.append(info['img_path'])
        rows.append(row)
    return rows, files


def _folder_rows(path: str) -> Tuple[List[dict], List[str]]:
    files = sorted((osp.join(folder, name)
                    for folder, _, names in os.walk(path) for name in names
                    if osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS),
                   key=lambda file: osp.relpath(file, path))
    if not files:
        raise ValueError(f'Folder {path} holds no images '
                         f'({", ".join(IMAGE_EXTENSIONS)}).')
    rows = []
    for file in files:
        relative = osp.relpath(file, path)
        stem = osp.splitext(relative)[0]
        sidecar = osp.splitext(file)[0] + '.txt'
        if osp.isfile(sidecar):
            with open(sidecar, encoding='utf-8') as f:
                caption = f.read().strip()
        else:
            # No caption file: the file name, as a shop's image names often
            # describe the product ("long_purple_checked_trousers.jpg").
            caption = osp.basename(stem).replace('_', ' ').replace('-', ' ')
        rows.append(
            dict(
                product_id=stem.replace(os.sep, '/'),
                caption=caption,
                category=osp.dirname(relative).replace(os.sep, '/')))
    return rows, files


def _leave_out(rows: List[dict], files: List[str], base: str,
               on_bad_sample: str, exclude: Sequence[str]):
    """Rows and files without the excluded and (under ``'skip'``) the
    unreadable images, and the (file, reason) of those left out."""
    excluded = {osp.normpath(e) for e in exclude}
    keep_rows, keep_files, skipped = [], [], []
    for row, file in zip(rows, files):
        reason = 'excluded' if osp.normpath(osp.relpath(
            file, base)) in excluded else None
        if reason is None and on_bad_sample == 'skip':
            try:
                # Decoding at 1/8 scale reads every byte of a JPEG, so a
                # truncated file is found at a fraction of the full cost.
                decode_image(file, min_size=1)
            except (ImageDecodeError, OSError) as err:
                reason = str(err)
        if reason is None:
            keep_rows.append(row)
            keep_files.append(file)
        else:
            skipped.append((file, reason))
    return keep_rows, keep_files, skipped


def open_gallery(spec: str,
                 image_root: Optional[str] = None,
                 caption_fields: Sequence[str] = ('input_description', ),
                 on_bad_sample: str = 'raise',
                 exclude: Sequence[str] = ()) -> Gallery:
    """Open a gallery named by ``spec`` (see the module docstring).

    Args:
        spec: ``[kind:]path``.
        image_root: JSON-lines only: the folder ``img_path`` is relative to
            (default: the file's folder).
        caption_fields: Fashion-Gen only: the text fields of a caption (as
            ``FashionGenDataset``).
        on_bad_sample: Folder and JSON-lines galleries: ``'raise'``
            (default) reads images when asked and raises on an unreadable
            one, naming it; ``'skip'`` decodes every image now and leaves
            the unreadable ones out (``Gallery.skipped`` lists them), as the
            data sets' ``on_bad_sample`` does.
        exclude: Image files (relative to the folder / image root) to leave
            out, as a built index records its skipped files.

    Returns:
        Gallery: Its rows (captions read now, images on demand).

    Raises:
        FileNotFoundError, ValueError, KeyError: The source is missing or
            malformed (the message names the file and what to do).
    """
    if on_bad_sample not in ('raise', 'skip'):
        raise ValueError("on_bad_sample must be 'raise' or 'skip', got "
                         f'{on_bad_sample!r}.')
    kind, path = parse_gallery_spec(spec)
    root = None
    if kind == 'fashiongen':
        rows, files = _fashiongen_rows(path, caption_fields), []
    elif kind == 'jsonl':
        root = osp.abspath(image_root or osp.dirname(path))
        rows, files = _jsonl_rows(path, root)
    elif kind == 'shards':
        dataset = _shard_dataset(path)
        rows, files = [row for _, row in _dataset_rows(dataset)], []
    else:
        rows, files = _folder_rows(path)
    skipped = []
    if files:
        rows, files, skipped = _leave_out(rows, files, root or path,
                                          on_bad_sample, exclude)
    gallery = Gallery(kind, path, rows, root, files, skipped)
    if kind == 'shards':
        gallery._shards = dataset  # its shards are open already
    return gallery


def _shard_dataset(manifest: str):
    """The :class:`mvlt.datasets.ShardDataset` of a shards gallery,
    keeping up to :data:`MAX_OPEN_SHARDS` shards open."""
    # The data sets need torch; imported here (see _fashiongen_rows).
    from mvlt.datasets import ShardDataset
    return ShardDataset(
        manifest=manifest, test_mode=True, max_open_shards=MAX_OPEN_SHARDS)


def gallery_of_rows(spec: Dict, rows: Sequence[dict]) -> Gallery:
    """A gallery opened again from its ``spec`` (:attr:`Gallery.spec`) and
    rows recorded earlier (a search index's items), without the data sets
    (torch): Fashion-Gen galleries take the rows given, folders are listed
    again (torch-free anyway).

    Raises:
        FileNotFoundError: The source is missing.
        ValueError: A JSON-lines or shards gallery (read by the data sets,
            which need torch).
    """
    kind, path = spec['kind'], spec['path']
    if kind in ('jsonl', 'shards'):
        raise ValueError(
            f'a {kind} gallery is read by mvlt.datasets, which needs torch; '
            'serve it with the PyTorch backend, or index a folder / '
            'Fashion-Gen gallery.')
    if kind == 'folder':
        return open_gallery(
            f'folder:{path}', exclude=spec.get('exclude', ()))
    if not osp.isfile(path):
        raise FileNotFoundError(f'Gallery {path} does not exist.')
    kept = [{
        key: row[key]
        for key in ('product_id', 'caption', 'category')
    } for row in rows]
    return Gallery(kind, path, kept, spec.get('image_root'), [])
