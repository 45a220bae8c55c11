"""MS-COCO 2014 image-caption retrieval on Karpathy's splits."""
import contextlib
import io
import json
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from mmengine.utils import is_abs

from mvlt.registry import DATASETS
from .base import MVLTBaseDataset
from .image_text import assign_product_index
from .products import product_table

KARPATHY_SPLITS = ('train', 'restval', 'val', 'test')
#: Official captions file of each image folder of COCO 2014.
DEFAULT_CAPTION_FILES = dict(
    train2014='annotations/captions_train2014.json',
    val2014='annotations/captions_val2014.json')


def _normalise(caption: str) -> str:
    return ' '.join(caption.split())


@DATASETS.register_module()
class COCORetrievalDataset(MVLTBaseDataset):
    """COCO 2014 image-caption pairs of Karpathy's splits.

    The image list and the split of every image come from Karpathy's split
    file ``dataset_coco.json`` (``images[]`` with ``filepath``,
    ``filename``, ``split``, ``cocoid``, ``sentences[].raw``). Train on
    ``('train', 'restval')`` (113,287 images), evaluate on ``'test'`` (the
    5K split: 5,000 images, 25,010 captions).

    Captions: by default (``caption_source='karpathy'``) the ``raw``
    sentences of the split file, the text the published 5K results (ViLT
    and others) were computed on. The official captions files
    (``captions_train2014.json`` / ``captions_val2014.json``, read with
    ``pycocotools.coco.COCO``) then serve as a consistency check: every
    image must exist there under the same file name, and images whose
    caption set differs (after whitespace normalisation) are counted in a
    warning. With ``caption_source='official'`` the captions come from the
    official files and Karpathy's file only gives the image list and split.

    One data info per (image, caption): ``img_path``, ``caption``,
    ``product_id`` = ``cocoid`` (every caption of an image is a positive of
    it, and negatives never come from the same image), ``product_index``,
    ``sample_idx``. There are no class labels.

    Args:
        ann_file (str): Karpathy's ``dataset_coco.json`` (joined to
            ``data_root``).
        split (str | Sequence[str]): Karpathy split(s) to read.
        caption_source (str): ``'karpathy'`` or ``'official'``.
        caption_files (dict, optional): Image folder (``filepath``) ->
            official captions file, joined to ``data_root``. None skips the
            consistency check (only with ``caption_source='karpathy'``).
        check_files (bool): Check at construction that every image file
            exists (local paths only).
        max_captions_per_image (int, optional): Keep the first K captions of
            each image (None keeps all; a few images have 6 or 7).
        **kwargs: ``MVLTBaseDataset`` arguments; images are read from
            ``data_prefix['img_path'] / filepath / filename``.
    """

    METAINFO = dict()

    def __init__(self,
                 ann_file: str = 'dataset_coco.json',
                 split: Union[str, Sequence[str]] = ('train', 'restval'),
                 caption_source: str = 'karpathy',
                 caption_files: Optional[Dict[str,
                                              str]] = DEFAULT_CAPTION_FILES,
                 check_files: bool = True,
                 max_captions_per_image: Optional[int] = None,
                 **kwargs) -> None:
        splits = (split, ) if isinstance(split, str) else tuple(split)
        unknown = [s for s in splits if s not in KARPATHY_SPLITS]
        if not splits or unknown:
            raise ValueError(f'split must be one or more of {KARPATHY_SPLITS}'
                             f', got {split!r}.')
        if caption_source not in ('karpathy', 'official'):
            raise ValueError("caption_source must be 'karpathy' or "
                             f"'official', got {caption_source!r}.")
        if caption_source == 'official' and not caption_files:
            raise ValueError("caption_source='official' needs caption_files "
                             '(image folder -> captions_*2014.json).')
        self.splits = splits
        self.caption_source = caption_source
        self.caption_files = dict(caption_files or {})
        self.check_files = check_files
        self.max_captions_per_image = max_captions_per_image
        super().__init__(ann_file=ann_file, **kwargs)

    # ------------------------------------------------------------ reading
    def _resolve(self, path: str) -> str:
        if self.data_root and not is_abs(path):
            return osp.join(self.data_root, path)
        return path

    def _read_karpathy(self) -> List[dict]:
        """Entries of the selected splits, checked; each gets ``_row``."""
        path = self.ann_file
        if '://' not in path and not osp.isfile(path):
            raise FileNotFoundError(
                f'Karpathy split file {path} does not exist; set data_root / '
                'ann_file (dataset_coco.json from Karpathy\'s caption '
                'splits).')
        with get_local_path(path) as local, open(local, encoding='utf-8') as f:
            try:
                content = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path} is not valid JSON ({err}).') \
                    from None
        images = content.get('images') if isinstance(content, dict) else None
        if not isinstance(images, list):
            raise ValueError(f'{path} has no "images" list; expected '
                             'Karpathy\'s dataset_coco.json.')
        selected = []
        for row, entry in enumerate(images):
            where = f'{path} images[{row}]'
            if isinstance(entry, dict) and 'cocoid' in entry:
                where += f' (cocoid {entry["cocoid"]})'
            if not isinstance(entry, dict):
                raise ValueError(f'{where} is not an object.')
            missing = [
                key for key in ('split', 'filepath', 'filename', 'cocoid',
                                'sentences') if key not in entry
            ]
            if missing:
                raise KeyError(f'{where} lacks {missing}; every image of a '
                               'Karpathy split file needs split, filepath, '
                               'filename, cocoid and sentences.')
            if entry['split'] not in KARPATHY_SPLITS:
                raise ValueError(f'{where} has split {entry["split"]!r}; '
                                 f'expected one of {KARPATHY_SPLITS}.')
            if entry['split'] not in self.splits:
                continue
            captions = []
            for sentence in entry['sentences']:
                if not isinstance(sentence, dict) or \
                        not isinstance(sentence.get('raw'), str):
                    raise ValueError(f'{where}: every sentence needs a "raw"'
                                     ' caption string.')
                captions.append(sentence['raw'].strip())
            selected.append(
                dict(entry, _row=row, _where=where, _captions=captions))
        if not selected:
            raise ValueError(f'{path} has no image in split(s) '
                             f'{list(self.splits)}.')
        return selected

    def _official_captions(self, entries: List[dict]) -> Dict[int, List[str]]:
        """cocoid -> official captions (in annotation id order), checked
        against the Karpathy entries (image present, same file name)."""
        from pycocotools.coco import COCO
        folders = sorted({entry['filepath'] for entry in entries})
        missing = [f for f in folders if f not in self.caption_files]
        if missing:
            raise KeyError(f'No captions file for image folder(s) {missing} '
                           f'of {self.ann_file}; caption_files maps '
                           f'{sorted(self.caption_files)}.')
        images: Dict[int, dict] = {}
        captions: Dict[int, List[str]] = {}
        for folder in folders:
            path = self._resolve(self.caption_files[folder])
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'COCO captions file {path} does not exist (needed for '
                    f'the {folder} images of {self.ann_file}).')
            # pycocotools prints progress to stdout.
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    coco = COCO(path)
                except Exception as err:
                    raise ValueError(f'Cannot read COCO captions file {path}: '
                                     f'{type(err).__name__}: {err}') from None
            for image_id, image in coco.imgs.items():
                images[image_id] = dict(image, _file=path)
            for image_id, anns in coco.imgToAnns.items():
                captions[image_id] = [
                    a['caption'].strip()
                    for a in sorted(anns, key=lambda a: a['id'])
                ]
        for entry in entries:
            image = images.get(entry['cocoid'])
            if image is None:
                raise KeyError(
                    f'{entry["_where"]}: image id {entry["cocoid"]} is not '
                    f'in the official captions file of {entry["filepath"]};'
                    ' the split file and the captions files disagree.')
            if image.get('file_name') != entry['filename']:
                raise ValueError(
                    f'{entry["_where"]}: file name {entry["filename"]!r} but '
                    f'{image["_file"]} names image {entry["cocoid"]} '
                    f'{image.get("file_name")!r}.')
        return captions

    def _check_captions(self, entries: List[dict],
                        official: Dict[int, List[str]]) -> None:
        """Warn about images whose Karpathy and official captions differ."""
        differing = [
            entry for entry in entries
            if sorted(map(_normalise, entry['_captions'])) != sorted(
                map(_normalise, official.get(entry['cocoid'], [])))
        ]
        if differing:
            example = differing[0]
            print_log(
                f'{len(differing)} of {len(entries)} images of '
                f'{self.ann_file} have captions that differ from the '
                f'official captions files, e.g. {example["_where"]}: '
                f'{example["_captions"][:2]} vs '
                f'{official.get(example["cocoid"], [])[:2]}. Using '
                f'{self.caption_source!r} captions.',
                logger='current',
                level=logging.WARNING)

    def load_data_list(self) -> List[dict]:
        entries = self._read_karpathy()
        if self.caption_files:
            official = self._official_captions(entries)
            if self.caption_source == 'karpathy':
                self._check_captions(entries, official)
            else:
                for entry in entries:
                    entry['_captions'] = official.get(entry['cocoid'], [])
        prefix = self.data_prefix.get('img_path', '')
        data_list = []
        for entry in entries:
            img_path = osp.join(prefix, entry['filepath'], entry['filename'])
            if self.check_files and '://' not in img_path and \
                    not osp.isfile(img_path):
                raise FileNotFoundError(
                    f'{entry["_where"]}: image file {img_path} does not '
                    'exist; check data_root / data_prefix (images are read '
                    'from <data_prefix.img_path>/<filepath>/<filename>).')
            captions = entry['_captions']
            if self.max_captions_per_image is not None:
                captions = captions[:self.max_captions_per_image]
            if not captions:
                raise ValueError(f'{entry["_where"]} has no caption '
                                 f'({self.caption_source} source).')
            for caption in captions:
                data_list.append(
                    dict(
                        img_path=img_path,
                        caption=caption,
                        product_id=int(entry['cocoid'])))
        assign_product_index(data_list)
        return data_list

    def product_table(self) -> dict:
        """Per-row ``product_index`` and ``product_id`` (= cocoid) (N,)
        int64 arrays (class columns are -1): rows of one image share
        them."""
        return product_table(self)
