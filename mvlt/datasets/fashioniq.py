"""FashionIQ (text-guided image retrieval, TGIR) read from the release
layout.

The release (Wu et al., "Fashion IQ", CVPR 2021) holds, per category
(``dress``, ``shirt``, ``toptee``) and split (``train``, ``val``, ``test``)::

    captions/cap.{category}.{split}.json
        [{"candidate": ASIN, "target": ASIN, "captions": [cap1, cap2]}, ...]
        (the reference image is the "candidate"; test entries have no
        "target")
    image_splits/split.{category}.{split}.json     [ASIN, ...]
    images/{ASIN}.jpg                              (some mirrors: .png)

The protocol (docs/tgir.md): a query is the reference image and its two
relative captions joined as "cap1 and cap2" (:func:`join_captions`, as
CLIP4Cir does); its gallery is every image of its category's image split.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mvlt.registry import DATASETS
from .base import MVLTBaseDataset

CATEGORIES = ('dress', 'shirt', 'toptee')
SPLITS = ('train', 'val', 'test')
CAPTION_ORDERS = ('forward', 'both')
MISSING_IMAGE_POLICIES = ('error', 'drop')


def join_captions(captions: Sequence[str], reverse: bool = False) -> str:
    """Two relative captions as one modification text: "cap1 and cap2".

    Each caption loses leading / trailing spaces, full stops, question
    marks and commas, as CLIP4Cir (Baldrati et al., CVPR-W 2022) prepares
    FashionIQ queries at validation; ``reverse`` gives "cap2 and cap1"
    (their training uses both orders). A single caption is used alone.

    Raises:
        ValueError: No caption, or only empty ones.
    """
    parts = [c.strip('.?, ') for c in captions]
    parts = [p for p in parts if p]
    if not parts:
        raise ValueError(f'No relative caption to join in {captions!r}.')
    if reverse:
        parts = parts[::-1]
    return ' and '.join(parts)


def _read_json_list(path: str, what: str) -> list:
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'FashionIQ {what} file {path} does not exist; put the release\'s '
            'captions/ and image_splits/ folders under data_root (see '
            'docs/tgir.md) or write a synthetic set with '
            'tools/misc/make_synthetic_fashioniq.py.')
    with open(path, encoding='utf-8') as f:
        try:
            content = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}: not valid JSON ({err.msg} at line '
                             f'{err.lineno}).') from None
    if not isinstance(content, list):
        raise ValueError(f'{path}: expected a JSON list, got '
                         f'{type(content).__name__}.')
    return content


@DATASETS.register_module()
class FashionIQDataset(MVLTBaseDataset):
    """FashionIQ pairs as TGIR samples, and the per-category galleries.

    Each sample is one pair: ``img_path`` (the reference image),
    ``target_img_path`` (None in the test split), ``caption`` (the joined
    relative captions), ``captions`` (the two as released), ``category``,
    ``category_index`` (index in ``categories``), ``reference_id`` /
    ``target_id`` (ASINs), ``reference_index`` / ``target_index`` (rows of
    the category's gallery, -1 where the image is not in it) and
    ``product_index`` (one id per distinct target image, so that two pairs
    with the same target are not each other's negatives in training).

    :attr:`galleries` maps each category to its image split, a list of
    ``dict(asin, img_path)``: the candidates of that category's queries.

    Args:
        data_root (str): The release folder (``captions/``,
            ``image_splits/``, ``images/``).
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        categories (Sequence[str]): Of ``dress``, ``shirt``, ``toptee``.
        caption_order (str): ``'forward'``: "cap1 and cap2" (validation
            practice); ``'both'``: each pair twice, once in each order (the
            training option; deterministic, so a resumed run sees the same
            samples).
        image_exts (Sequence[str]): Image file extensions tried, in order.
        missing_images (str): ``'error'``: an image listed in a caption or
            split file but absent is an error naming it and the file;
            ``'drop'``: such pairs and gallery entries are left out and
            counted in :attr:`num_dropped`.
        data_prefix (dict): Sub-folders ``captions``, ``image_splits``,
            ``img_path``.
        **kwargs: ``MVLTBaseDataset`` arguments (``pipeline``,
            ``test_mode``, ``on_bad_sample``, ...).
    """

    # Not "categories": those name class labels (LabelMapCheckHook compares
    # them with a checkpoint's); FashionIQ's categories are galleries.
    METAINFO = dict(fashioniq_categories=CATEGORIES)

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 categories: Sequence[str] = CATEGORIES,
                 caption_order: str = 'forward',
                 image_exts: Sequence[str] = ('.jpg', '.png'),
                 missing_images: str = 'error',
                 data_prefix: Optional[dict] = None,
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'FashionIQDataset: split must be one of '
                             f'{SPLITS}, got {split!r}.')
        unknown = [c for c in categories if c not in CATEGORIES]
        if unknown or not categories:
            raise ValueError(f'FashionIQDataset: unknown categories '
                             f'{unknown}; choose from {CATEGORIES}.')
        if caption_order not in CAPTION_ORDERS:
            raise ValueError(f'FashionIQDataset: caption_order must be one '
                             f'of {CAPTION_ORDERS}, got {caption_order!r}.')
        if missing_images not in MISSING_IMAGE_POLICIES:
            raise ValueError(
                f'FashionIQDataset: missing_images must be one of '
                f'{MISSING_IMAGE_POLICIES}, got {missing_images!r}.')
        self.split = split
        self.categories = tuple(categories)
        self.caption_order = caption_order
        self.image_exts = tuple(image_exts)
        self.missing_images = missing_images
        self.galleries: Dict[str, List[dict]] = {}
        self.num_dropped = 0
        prefix = dict(
            captions='captions',
            image_splits='image_splits',
            img_path='images')
        prefix.update(data_prefix or {})
        super().__init__(
            data_root=data_root,
            data_prefix=prefix,
            metainfo=dict(fashioniq_categories=self.categories),
            **kwargs)

    # ------------------------------------------------------------ images
    def _image_files(self) -> Dict[str, str]:
        """ASIN -> file of the image folder (one listing, not a stat per
        image); the first of ``image_exts`` wins."""
        folder = self.data_prefix['img_path']
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'FashionIQ image folder {folder} does not exist; put the '
                'images (ASIN.jpg or ASIN.png) there or set '
                'data_prefix.img_path.')
        rank = {ext: i for i, ext in enumerate(self.image_exts)}
        found: Dict[str, tuple] = {}
        for name in os.listdir(folder):
            stem, ext = osp.splitext(name)
            if ext in rank and (stem not in found
                                or rank[ext] < found[stem][0]):
                found[stem] = (rank[ext], osp.join(folder, name))
        return {stem: path for stem, (_, path) in found.items()}

    def _image(self, files: Dict[str, str], asin: str,
               where: str) -> Optional[str]:
        """The file of ``asin``; None (dropped) or an error when absent."""
        if not isinstance(asin, str) or not asin:
            raise ValueError(f'{where}: {asin!r} is not an image name.')
        path = files.get(asin)
        if path is None:
            if self.missing_images == 'drop':
                self.num_dropped += 1
                return None
            folder = self.data_prefix['img_path']
            tried = ' or '.join(
                osp.join(folder, asin + ext) for ext in self.image_exts)
            raise FileNotFoundError(
                f'{where}: image {asin} is missing (looked for {tried}); '
                'add it, or set missing_images=\'drop\' to leave out what '
                'needs it.')
        return path

    # ------------------------------------------------------------- lists
    def _gallery(self, category: str, files: Dict[str, str]) -> List[dict]:
        path = osp.join(self.data_prefix['image_splits'],
                        f'split.{category}.{self.split}.json')
        gallery = []
        for i, asin in enumerate(_read_json_list(path, 'image split')):
            img_path = self._image(files, asin, f'{path} entry {i}')
            if img_path is not None:
                gallery.append(dict(asin=asin, img_path=img_path))
        return gallery

    def _pairs(self, category: str, files: Dict[str, str],
               rows: Dict[str, int], target_ids: Dict[str, int]) -> list:
        path = osp.join(self.data_prefix['captions'],
                        f'cap.{category}.{self.split}.json')
        samples = []
        for i, entry in enumerate(_read_json_list(path, 'captions')):
            where = f'{path} entry {i}'
            if not isinstance(entry, dict) or 'candidate' not in entry or \
                    not isinstance(entry.get('captions'), list):
                raise ValueError(f'{where}: expected {{"candidate": ASIN, '
                                 '"target": ASIN, "captions": [...]}, got '
                                 f'{str(entry)[:200]}.')
            if 'target' not in entry and self.split != 'test':
                raise KeyError(f'{where}: no "target" (only the test split '
                               'is released without targets).')
            reference = self._image(files, entry['candidate'],
                                    f'{where} (candidate)')
            target = entry.get('target')
            target_path = None if target is None else self._image(
                files, target, f'{where} (target)')
            if reference is None or (target is not None
                                     and target_path is None):
                continue
            orders = (False,
                      True) if self.caption_order == 'both' else (False, )
            for reverse in orders:
                samples.append(
                    dict(
                        img_path=reference,
                        target_img_path=target_path,
                        caption=join_captions(entry['captions'], reverse),
                        captions=list(entry['captions']),
                        category=category,
                        category_index=self.categories.index(category),
                        reference_id=entry['candidate'],
                        target_id=target,
                        reference_index=rows.get(entry['candidate'], -1),
                        target_index=rows.get(target, -1),
                        product_index=target_ids.setdefault(
                            target or f'#{category}{i}', len(target_ids)),
                        pair_index=i))
        return samples

    def load_data_list(self) -> List[dict]:
        """Every pair of every category (see the class docstring)."""
        files = self._image_files()
        data_list: List[dict] = []
        target_ids: Dict[str, int] = {}
        for category in self.categories:
            gallery = self._gallery(category, files)
            self.galleries[category] = gallery
            rows = {item['asin']: row for row, item in enumerate(gallery)}
            data_list += self._pairs(category, files, rows, target_ids)
        if not data_list:
            raise ValueError(f'FashionIQ {self.data_root}: no pairs in '
                             f'split {self.split!r} of {self.categories}.')
        return data_list

    def check_queries_in_gallery(self) -> None:
        """Evaluation needs every target in its category's gallery.

        Raises:
            ValueError: Naming the first pair whose target is not in its
                category's image split.
        """
        for index in range(len(self)):
            info = self.get_data_info(index)
            if info['target_id'] is None:
                raise ValueError(
                    f'FashionIQ split {self.split!r} has no targets; '
                    'evaluate on the val split.')
            if info['target_index'] < 0:
                raise ValueError(
                    f"FashionIQ cap.{info['category']}.{self.split}.json "
                    f"entry {info['pair_index']}: target "
                    f"{info['target_id']} is not in "
                    f"split.{info['category']}.{self.split}.json, so it "
                    'cannot be ranked.')
