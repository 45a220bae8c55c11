"""Serve exported MVLT graphs with ONNX Runtime, without torch.

The same calls as :class:`mvlt.apis.MVLTInferencer` that the catalogue
search and the index builder make (:meth:`embed_images`,
:meth:`embed_captions`, :meth:`score`), on the graphs of
``tools/deployment/export_onnx.py``. Images go through
:func:`mvlt.deploy.preprocessing.prepare_image` and
:func:`~mvlt.deploy.preprocessing.normalize_images`, captions through
:class:`mvlt.text.tokenizer.CaptionEncoder`: the functions the model's
data preprocessor runs on the CPU; files are read by
:func:`mvlt.image.decode_image`, as the inferencer reads them. Only NumPy,
OpenCV, Pillow, ``transformers``' tokenizer and ``onnxruntime`` are
imported.
"""
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from mvlt.image import decode_image
from mvlt.text.tokenizer import CaptionEncoder, build_tokenizer
from .manifest import ManifestMismatchError, check_manifest, read_manifest
from .preprocessing import normalize_images, prepare_image

ImageInput = Union[str, np.ndarray]


def import_onnxruntime():
    """``onnxruntime``, or an ImportError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError('The ONNX Runtime backend needs onnxruntime: pip '
                          'install -r requirements/optional.txt') from None
    return onnxruntime


class OnnxInferencer:
    """ITC embeddings and ITM scores from an ONNX export.

    Args:
        export_dir: Folder of ``tools/deployment/export_onnx.py``.
        checkpoint: The checkpoint in use, if any: refused unless the graphs
            were exported from it (SHA-256 in the manifest).
        checkpoint_sha256: The same check against a recorded hash (a search
            index's).
        vocab_file: The vocabulary in use, if any: refused unless it is the
            one exported with the graphs.
        batch_size: Items per graph run.
        num_threads: ONNX Runtime intra-op threads (None: its default).
        cfg: The model config, kept for callers that record it (the index
            builder writes it into the index); not read here.

    Raises:
        FileNotFoundError: No export in ``export_dir``.
        mvlt.deploy.ManifestMismatchError: The export does not match the
            checkpoint or vocabulary in use, or its files changed.
    """

    #: What :attr:`SearchIndex.meta` records as the backend of an index.
    backend = 'onnxruntime'

    def __init__(self,
                 export_dir: str,
                 checkpoint: Optional[str] = None,
                 checkpoint_sha256: Optional[str] = None,
                 vocab_file: Optional[str] = None,
                 batch_size: int = 64,
                 num_threads: Optional[int] = None,
                 cfg=None) -> None:
        ort = import_onnxruntime()
        self.export_dir = osp.abspath(export_dir)
        self.manifest = read_manifest(self.export_dir)
        check_manifest(self.export_dir, self.manifest, checkpoint,
                       checkpoint_sha256, vocab_file)
        self.checkpoint = checkpoint
        self.cfg = cfg
        self.batch_size = int(batch_size)
        facts = self.manifest['preprocessing']
        self.img_size: Tuple[int, int] = tuple(facts['img_size'])
        self.mean, self.std = facts['mean'], facts['std']
        self.foreground_crop: Optional[dict] = facts['foreground_crop']
        if facts.get('resize_kernel', 'cv2') != 'cv2':
            raise ManifestMismatchError(
                f'{self.export_dir}: the model resizes with the '
                f"{facts['resize_kernel']!r} kernel; the ONNX Runtime "
                "backend runs the 'cv2' one (within 1 grey level). Export "
                "with model.data_preprocessor.resize_kernel='cv2'.")
        tok = self.manifest['tokenizer']
        tokenizer = build_tokenizer(
            dict(
                vocab_file=osp.join(self.export_dir, tok['vocab_file']),
                do_lower_case=tok['do_lower_case'],
                strip_accents=tok['strip_accents']))
        #: The tokenizer (as ``MVLTInferencer.tokenizer``).
        self.tokenizer = tokenizer
        self.caption_encoder = CaptionEncoder(tokenizer, tok['text_len'])
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        self.sessions: Dict[str, object] = {
            name:
            ort.InferenceSession(
                osp.join(self.export_dir, graph['file']),
                options,
                providers=['CPUExecutionProvider'])
            for name, graph in self.manifest['graphs'].items()
        }

    @property
    def has_itc(self) -> bool:
        """Whether the export has the ITC towers."""
        return 'image' in self.sessions and 'text' in self.sessions

    @property
    def has_itm(self) -> bool:
        """Whether the export has the ITM graph (re-ranking)."""
        return 'itm' in self.sessions

    def _require(self, graph: str, what: str) -> None:
        if graph not in self.sessions:
            raise KeyError(
                f'{what} needs the {graph!r} graph; {self.export_dir} has '
                f'only {sorted(self.sessions)} (the model had no '
                f'{"ITM" if graph == "itm" else "ITC"} head).')

    # -------------------------------------------------------------- inputs
    def load_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Files / RGB uint8 arrays (H, W, 3) -> normalised float32
        (N, 3, H, W), as the model's data preprocessor makes them.

        Raises:
            mvlt.image.ImageDecodeError: An unreadable file.
            ValueError: An array that is not RGB uint8 (H, W, 3).
        """
        prepared = []
        for image in images:
            # Files: the one decoder, as MVLTInferencer.load_images reads.
            array = decode_image(image) if isinstance(image, str) else \
                np.asarray(image)
            if array.ndim != 3 or array.shape[2] != 3 or \
                    array.dtype != np.uint8:
                raise ValueError('Images must be RGB uint8 arrays (H, W, 3),'
                                 f' got {array.dtype} {array.shape}.')
            prepared.append(
                prepare_image(array, self.img_size, self.foreground_crop))
        return normalize_images(np.stack(prepared), self.mean, self.std)

    def _pixels(self, images) -> np.ndarray:
        """``images`` through :meth:`load_images`, unless they are its
        float32 (N, 3, H, W) output already (an upload prepared once)."""
        if isinstance(images, np.ndarray) and images.ndim == 4 and \
                images.dtype == np.float32:
            return images
        return self.load_images(images)

    def tokenize_captions(self, captions: Sequence[str]) -> tuple:
        """Captions -> ``input_ids``, ``attention_mask`` int64, cut after
        the last real token of the batch (the graphs take any length; the
        key padding mask makes the cut exact)."""
        ids, mask = self.caption_encoder(list(captions))
        used = np.flatnonzero(mask.any(axis=0))
        length = int(used[-1]) + 1 if len(used) else 1
        return ids[:, :length], mask[:, :length]

    def _run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        count = len(next(iter(inputs.values())))
        session = self.sessions[graph]
        outputs = [
            session.run(
                None, {
                    name: value[start:start + self.batch_size]
                    for name, value in inputs.items()
                })[0] for start in range(0, count, self.batch_size)
        ]
        return np.concatenate(outputs)

    # ------------------------------------------------------------- scoring
    def embed_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """L2-normalised ITC embeddings (N, D) of images."""
        self._require('image', 'embed_images')
        return self._run('image', images=self._pixels(images))

    def embed_captions(self, captions: Sequence[str]) -> np.ndarray:
        """L2-normalised ITC embeddings (N, D) of captions."""
        self._require('text', 'embed_captions')
        ids, mask = self.tokenize_captions(captions)
        return self._run('text', input_ids=ids, attention_mask=mask)

    def score(self, images: Sequence[ImageInput],
              captions: Sequence[str]) -> np.ndarray:
        """ITM matching probability (N,) of ``images[i]`` with
        ``captions[i]``."""
        if len(images) != len(captions):
            raise ValueError(f'score: {len(images)} images but '
                             f'{len(captions)} captions; pass pairs.')
        self._require('itm', 'score')
        ids, mask = self.tokenize_captions(captions)
        return self._run(
            'itm',
            images=self._pixels(images),
            input_ids=ids,
            attention_mask=mask)

    def rank_images(self, *args, **kwargs):
        """Exact ITM ranking of a whole gallery is not served from ONNX
        graphs (an exact-ITM index is for models without ITC)."""
        raise KeyError('An exact-ITM index (a model without an ITC head) is '
                       'served by the PyTorch backend only; serve it without '
                       '--backend onnxruntime.')

    rank_captions = rank_images
