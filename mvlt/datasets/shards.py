"""Image-caption tar shards (img2dataset / WebDataset layout) as a map-style
data set.

Reader choice (measured in docs/custom_data.md, "Choosing the reader"):
``wids``' ``IndexedTarSamples`` (the indexed sibling of ``webdataset``)
reads a shard's tar headers once into an index and then serves any sample by
offset from a memory map. A map-style data set is what MMEngine's samplers
(``DefaultSampler`` / :class:`~mvlt.datasets.ResumableSampler`) split across
ranks and DataLoader workers by index, so every sample is read exactly once
per epoch whatever the shard sizes, and the existing exact mid-epoch resume
(``ResumeStateHook`` + ``ResumableSampler.set_start``) applies unchanged.
``webdataset``'s streaming ``WebDataset`` reads as fast sequentially but
splits whole shards over ranks x workers (uneven shards give uneven epochs,
and ``resampled`` mode repeats samples) and cannot skip to a position inside
an epoch. ``wids.ShardListDataset`` itself copies every local shard into a
cache directory, prints to stderr and runs ``pipe:`` commands with a
``{local}`` placeholder rather than WebDataset's stdout convention, so only
its indexed-tar reader is used here. ``mosaicml-streaming`` needs its own MDS
shard format, not img2dataset's tars.
"""
import hashlib
import json
import logging
import os
import os.path as osp
import subprocess
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.logging import print_log

from mvlt.registry import DATASETS
from .base import MVLTBaseDataset
from .label_map import LabelMap

#: Extensions taken as the image of a sample, in order of preference.
IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png', 'webp', 'bmp')
#: ``format`` of the manifests ``tools/dataset_converters`` write.
MANIFEST_FORMAT = 'mvlt-shards/1'


def require_package(module: str) -> Any:
    """``braceexpand`` / ``wids`` (requirements/optional.txt), imported when
    shards are used so that ``import mvlt.datasets`` does not need them."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f'Reading tar shards needs {module.split(".")[0]}: pip install '
            'webdataset wids (see requirements/optional.txt).') from None


def expand_shard_urls(shards: Union[str, Sequence[str]],
                      root: str = '') -> List[str]:
    """Shard locations from paths, brace patterns and ``pipe:`` commands.

    Args:
        shards (str | Sequence[str]): ``'train-{00000..00099}.tar'``, a
            list of such strings, or ``'pipe:CMD'`` commands that write one
            tar to stdout (WebDataset's convention, e.g. ``'pipe:aws s3 cp
            s3://bucket/train-{00000..00099}.tar -'``). Braces are expanded
            in every form.
        root (str): Joined to relative local paths (not to ``pipe:``).

    Returns:
        list[str]: One location per shard, in the given order.

    Raises:
        ValueError: The pattern expands to nothing.
    """
    patterns = [shards] if isinstance(shards, str) else list(shards)
    urls = []
    for pattern in patterns:
        for url in require_package('braceexpand').braceexpand(str(pattern)):
            if not url.startswith('pipe:') and root and not osp.isabs(url):
                url = osp.join(root, url)
            urls.append(url)
    if not urls:
        raise ValueError(f'shards={shards!r} names no shard.')
    return urls


def read_manifest(path: str) -> dict:
    """A shard manifest (JSON) as written by ``tools/dataset_converters``.

    Raises:
        FileNotFoundError / ValueError: Missing file or not a manifest; the
            message names the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Shard manifest {path} does not exist; write one with '
            'tools/dataset_converters/*.py or pass shards= alone.')
    with open(path, encoding='utf-8') as f:
        try:
            manifest = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}: not JSON ({err}).') from None
    if not isinstance(manifest, dict) or manifest.get(
            'format') != MANIFEST_FORMAT or 'shards' not in manifest:
        raise ValueError(f'{path} is not a shard manifest (format '
                         f'{MANIFEST_FORMAT!r} with a "shards" list).')
    return manifest


@DATASETS.register_module()
class ShardDataset(MVLTBaseDataset):
    """Image-caption pairs read from tar shards, by index.

    A shard is a tar of samples ``KEY.jpg`` (or png / webp), ``KEY.txt``
    (the caption) and optionally ``KEY.json`` (fields ``product_id``,
    ``product_index``, ``category``, ``subcategory``), as img2dataset,
    OpenCLIP and clip-retrieval use them; ``tools/dataset_converters`` write
    them with a manifest (per-shard sample counts, sizes, SHA-256).

    Sample ``i`` of the data set is sample ``i - start`` of the shard whose
    range holds it; each process (DataLoader worker) opens the shards it
    needs and keeps up to ``max_open_shards`` open (memory maps, so reads
    are page-cache hits). ``pipe:`` shards are run once into ``cache_dir``.

    A data info holds ``img_bytes`` (the encoded image, for ``LoadImage``),
    ``img_path`` (``SHARD::KEY.EXT``, the sample's name in messages),
    ``caption``, ``key``, ``product_id``, ``product_index`` (from the JSON,
    else the sample index: one product per sample), ``category_label`` /
    ``subcategory_label`` (when a label map is known) and ``sample_idx``.

    Args:
        shards (str | Sequence[str], optional): See
            :func:`expand_shard_urls`; relative paths are joined to
            ``data_root``. Without ``manifest`` every shard is opened once at
            construction to count its samples.
        manifest (str, optional): A converter's manifest (joined to
            ``data_root``): the shard list (paths relative to the manifest)
            when ``shards`` is None, else only the sample counts and label
            names for ``shards`` (same order and file names).
        caption_ext (str): Extension of the caption member.
        image_extensions (Sequence[str]): Image members, by preference.
        cache_dir (str, optional): Where ``pipe:`` shards are stored
            (default ``~/.cache/mvlt/shards``).
        max_open_shards (int): Shards kept open per process.
        label_map_from (str, optional): Manifest whose category names make
            the label maps (the training split's; joined to ``data_root``).
            Default: ``metainfo`` if it has them, else ``manifest``.
        unknown_label (str): ``'error'`` or ``'ignore'`` for a category the
            label map lacks.
        **kwargs: ``MVLTBaseDataset`` arguments (``on_bad_sample``,
            ``data_root``, ``pipeline``, ``metainfo`` with ``categories`` /
            ``subcategories``, ``test_mode``).

    Bad data: under ``on_bad_sample='raise'`` an unreadable member or shard
    is an error naming ``SHARD::KEY``; under ``'skip'`` it is logged,
    counted (``num_bad_samples``) and replaced by the next sample; a shard
    that cannot be opened is skipped as a whole (counted once, logged with
    its sample count).
    """

    METAINFO = dict(categories=(), subcategories=())

    def __init__(self,
                 shards: Union[str, Sequence[str], None] = None,
                 manifest: Optional[str] = None,
                 caption_ext: str = 'txt',
                 image_extensions: Sequence[str] = IMAGE_EXTENSIONS,
                 cache_dir: Optional[str] = None,
                 max_open_shards: int = 8,
                 label_map_from: Optional[str] = None,
                 unknown_label: str = 'error',
                 **kwargs) -> None:
        if shards is None and manifest is None:
            raise ValueError('ShardDataset needs shards= (paths, brace '
                             'patterns or pipe: commands) or manifest=.')
        if kwargs.get('indices') is not None:
            raise ValueError('ShardDataset does not take indices=; split '
                             'the shards instead (one list per split).')
        self.shards_spec = shards
        self.manifest_file = manifest
        self.caption_ext = '.' + caption_ext.lstrip('.')
        self.image_extensions = tuple('.' + e.lstrip('.')
                                      for e in image_extensions)
        self.cache_dir = cache_dir or osp.join(
            osp.expanduser('~'), '.cache', 'mvlt', 'shards')
        self.max_open_shards = int(max_open_shards)
        self.unknown_label = unknown_label
        self.label_map_from = label_map_from
        self.urls: List[str] = []
        self.starts = np.zeros(1, np.int64)
        self._open: 'OrderedDict[int, Any]' = OrderedDict()
        self._open_pid: Optional[int] = None
        self._bad_shards: set = set()
        self._maps: Dict[str, Optional[LabelMap]] = {}
        kwargs.setdefault('serialize_data', False)
        super().__init__(ann_file=manifest or '', **kwargs)

    # ----------------------------------------------------------- indexing
    def full_init(self) -> None:
        """Resolve the shard list and their sample counts (no per-sample
        list is built: memory is per shard, not per sample)."""
        if self._fully_initialized:
            return
        manifest = None
        if self.manifest_file:
            manifest = read_manifest(self.ann_file)
        if self.shards_spec is None:
            base = osp.dirname(self.ann_file)
            self.urls = [
                osp.join(base, entry['path']) for entry in manifest['shards']
            ]
            counts = [int(entry['samples']) for entry in manifest['shards']]
        else:
            self.urls = expand_shard_urls(self.shards_spec, self.data_root)
            counts = self._counts(manifest)
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if self.starts[-1] == 0:
            raise ValueError(f'ShardDataset: the shards {self.urls[:3]}... '
                             'hold no samples.')
        names_from = manifest or {}
        if self.label_map_from:
            names_from = read_manifest(
                osp.join(self.data_root, self.label_map_from) if self.data_root
                and not osp.isabs(self.label_map_from) else self.label_map_from
            )
        for field, key in (('category', 'categories'), ('subcategory',
                                                        'subcategories')):
            names = self._metainfo.get(key) or names_from.get(key)
            self._maps[field] = LabelMap(names, field,
                                         self.unknown_label) if names else None
            if names:
                self._metainfo[key] = tuple(names)
        self._fully_initialized = True

    def _counts(self, manifest: Optional[dict]) -> List[int]:
        if manifest is not None:
            entries = manifest['shards']
            if len(entries) != len(self.urls) or any(
                    osp.basename(e['path']) not in url
                    for e, url in zip(entries, self.urls)):
                raise ValueError(
                    f'{self.ann_file} lists {len(entries)} shards '
                    f'({entries[0]["path"]} ...) that do not match shards='
                    f'{self.shards_spec!r} ({len(self.urls)}, '
                    f'{self.urls[0]} ...); give both in the same order.')
            return [int(e['samples']) for e in entries]
        counts = []
        for index, url in enumerate(self.urls):
            try:
                counts.append(len(self._shard(index)))
            except Exception as err:
                if self.on_bad_sample == 'raise':
                    if isinstance(err, OSError):
                        raise  # names the shard already
                    raise OSError(f'Cannot read shard {url}: '
                                  f'{type(err).__name__}: {err}') from None
                self._skip_shard(index, err, 0)
                counts.append(0)
        return counts

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return int(self.starts[-1])

    def load_data_list(self) -> List[dict]:
        """Unused: samples are located by index (:meth:`get_data_info`)."""
        return []

    def locate(self, index: int) -> tuple:
        """(shard index, index inside the shard) of sample ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(
                f'sample {index} out of range (0..{len(self) - 1}).')
        shard = int(np.searchsorted(self.starts, index, side='right')) - 1
        return shard, index - int(self.starts[shard])

    # ------------------------------------------------------------ reading
    def _local_path(self, url: str) -> str:
        """A local file for ``url``; ``pipe:`` commands run once into the
        cache (written to a temporary name, then renamed: a failed or
        killed download leaves no partial shard)."""
        if not url.startswith('pipe:'):
            return url
        digest = hashlib.sha256(url.encode()).hexdigest()[:24]
        local = osp.join(self.cache_dir, f'{digest}.tar')
        if osp.isfile(local):
            return local
        os.makedirs(self.cache_dir, exist_ok=True)
        partial = f'{local}.{os.getpid()}.part'
        with open(partial, 'wb') as out:
            result = subprocess.run(
                url[len('pipe:'):],
                shell=True,
                stdout=out,
                stderr=subprocess.PIPE)
        if result.returncode != 0:
            os.unlink(partial)
            raise OSError(
                f'{url}: the command exited with {result.returncode}: '
                f'{result.stderr.decode(errors="replace")[-300:]}')
        os.replace(partial, local)
        return local

    def _shard(self, index: int) -> Any:
        """This process's open reader of shard ``index`` (LRU)."""
        if self._open_pid != os.getpid():
            # Memory maps inherited through fork stay valid, but each
            # worker keeps its own LRU.
            self._open = OrderedDict()
            self._open_pid = os.getpid()
        reader = self._open.get(index)
        if reader is not None:
            self._open.move_to_end(index)
            return reader
        path = self._local_path(self.urls[index])
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'Shard {path} does not exist; check data_root / shards.')
        reader = require_package('wids.wids').IndexedTarSamples(path=path)
        try:
            self._check_shard(index, path, len(reader))
        except Exception:
            reader.close()
            raise
        self._open[index] = reader
        while len(self._open) > self.max_open_shards:
            self._open.popitem(last=False)[1].close()
        return reader

    def _check_shard(self, index: int, path: str, samples: int) -> None:
        """A torn or replaced shard is an error naming it: the tar must end
        with its end-of-archive block (a cut download does not) and hold
        the number of samples counted before (manifest or first open)."""
        size = osp.getsize(path)
        with open(path, 'rb') as f:
            f.seek(max(size - 512, 0))
            tail = f.read(512)
        if size % 512 or tail != bytes(512):
            raise OSError(f'Shard {self.urls[index]} is cut short ({size} '
                          'bytes, no tar end-of-archive block); convert or '
                          'download it again.')
        expected = self.starts[index + 1] - self.starts[index] if len(
            self.starts) > index + 1 else None
        if expected is not None and samples != expected:
            raise OSError(f'Shard {self.urls[index]} holds {samples} samples'
                          f', {expected} were counted (manifest or first '
                          'read); it changed since.')

    def __getstate__(self) -> dict:
        """Pickled (spawned workers) without the open memory maps."""
        state = dict(self.__dict__)
        state['_open'], state['_open_pid'] = OrderedDict(), None
        return state

    def _skip_shard(self, index: int, err: BaseException,
                    samples: int) -> None:
        self._bad_shards.add(index)
        count = self._bad_samples.increment()
        print_log(
            f'Skipped unreadable shard {self.urls[index]} ({samples} '
            f'samples): {type(err).__name__}: {err} [{count} skipped so '
            'far]',
            logger='current',
            level=logging.WARNING)

    def __getitem__(self, index: int) -> Any:
        if self.on_bad_sample == 'skip':
            index = self._first_in_readable_shard(index)
        return super().__getitem__(index)

    def _first_in_readable_shard(self, index: int) -> int:
        """``index``, or the first sample after the shards that cannot be
        opened (each skipped once, as a whole)."""
        for _ in range(len(self.urls)):
            shard, _ = self.locate(index)
            if shard not in self._bad_shards:
                try:
                    self._shard(shard)
                    return index
                except Exception as err:
                    self._skip_shard(
                        shard, err,
                        int(self.starts[shard + 1] - self.starts[shard]))
            index = int(self.starts[shard + 1]) % len(self)
        raise RuntimeError(f'ShardDataset: no shard of {self.urls[:3]}... '
                           'can be read; check data_root / shards.')

    def describe_sample(self, index: int) -> str:
        """``sample i (SHARD #j)``, without reading the sample."""
        try:
            shard, inner = self.locate(index)
            return f'sample {index} ({self.urls[shard]} #{inner})'
        except Exception:
            return f'sample {index}'

    def get_data_info(self, idx: int) -> dict:
        """The members of sample ``idx`` (image still encoded)."""
        shard, inner = self.locate(idx)
        url = self.urls[shard]
        sample = self._shard(shard)[inner]
        key = sample['__key__']
        name = f'{url}::{key}'
        image_ext = next(
            (ext for ext in self.image_extensions if ext in sample), None)
        if image_ext is None:
            raise KeyError(f'{name}: no image member (looked for '
                           f'{", ".join(self.image_extensions)}; found '
                           f'{sorted(k for k in sample if k[0] == ".")}).')
        if self.caption_ext not in sample:
            raise KeyError(f'{name}: no caption member {key}'
                           f'{self.caption_ext}.')
        caption = sample[self.caption_ext].getvalue().decode('utf-8').strip()
        meta = {}
        if '.json' in sample:
            meta = json.loads(sample['.json'].getvalue().decode('utf-8'))
            if not isinstance(meta, dict):
                raise ValueError(f'{name}.json is not a JSON object.')
        info = dict(
            img_bytes=np.frombuffer(sample[image_ext].getvalue(), np.uint8),
            img_path=f'{name}{image_ext}',
            key=key,
            caption=caption,
            product_id=meta.get('product_id', idx),
            product_index=int(meta.get('product_index', idx)),
            sample_idx=idx)
        for field, label_map in self._maps.items():
            if label_map is not None and meta.get(field) is not None:
                info[f'{field}_label'] = label_map.encode(meta[field], name)
        return info
