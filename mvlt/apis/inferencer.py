"""Inference with a trained MVLT: score pairs, rank galleries, reconstruct.

An MMEngine ``BaseInferencer``, in the manner of mmpretrain's retrieval
inferencers (a config + checkpoint, a cached gallery): calling it scores
``(image, caption)`` pairs through MMEngine's preprocess / forward /
postprocess cycle; ranking a gallery, embedding and reconstruction are
methods of their own (a cached two-sided gallery does not fit a
one-input-at-a-time cycle).
"""
import copy
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.infer import BaseInferencer

from mvlt.image import decode_image
from mvlt.utils import register_all_modules
from mvlt.utils.checkpoint_loading import CheckpointHeads
from mvlt.utils.config import load_config
from mvlt.visualization import denormalize, masked_view
from .gallery_ranking import GalleryRankingMixin, ImageInput
from .model_zoo import build_model_with_weights, model_config
from .zero_shot import ZeroShotMixin

#: Transforms of a test pipeline the inferencer does itself.
_SKIPPED = ('LoadImage', 'LoadFashionGenImage', 'LoadImageFromFile',
            'Tokenize', 'PackMVLTInputs')


def _pipeline_of(cfg: Config) -> list:
    # The test data set's own pipeline is what evaluation runs; the
    # top-level test_pipeline variable is a fallback for model-only configs.
    loader = cfg.get('test_dataloader') or {}
    pipeline = (loader.get('dataset') or {}).get('pipeline') or \
        cfg.get('test_pipeline') or []
    return list(pipeline)


class MVLTInferencer(ZeroShotMixin, GalleryRankingMixin, BaseInferencer):
    """Load an MVLT config and checkpoint and run it on images and captions.

    Images are file paths or RGB uint8 arrays (H, W, 3); they go through the
    image steps of the config's test pipeline, if any, then the model's data
    preprocessor (background crop, resize, normalisation), as in
    evaluation. Captions are strings, tokenised by the data preprocessor.

    * :meth:`score` (or calling the inferencer on ``(image, caption)``
      pairs, MMEngine's form: ``inferencer([(img, 'a red dress')])``
      returns ``{'predictions': [{'itm_score': ...}], ...}``): ITM matching
      probability of image-caption pairs.
    * :meth:`rank_images` / :meth:`rank_captions`: rank a gallery for a
      caption / an image by ITM. With an ITC head and ``rerank_k``, the ITC
      similarity (gallery embeddings cached per gallery) picks the top k
      that ITM re-ranks.
    * :meth:`embed_images` / :meth:`embed_captions`: ITC embeddings;
      :meth:`classify`: zero-shot labels by ITC similarity to prompts.
    * :meth:`reconstruct`: masked image generation with the MIR head.

    Scores come from the model's scoring API (:meth:`MVLT.score_pairs`,
    :meth:`MVLT.embed_images`, :meth:`MVLT.embed_texts`) and re-ranking from
    :mod:`mvlt.models.utils.retrieval`, the same functions as the retrieval
    test loop's.

    Args:
        config (str | Config): Model config (its ``model`` and test
            pipeline are used), or a metafile model name (list_models).
        checkpoint (str, optional): Weights; heads a method needs must be in
            it (a clear error otherwise).
        device (str): Torch device.
        cfg_options (dict, optional): Config overrides.
        batch_size (int): Pairs (or items) per forward pass.
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 cfg_options: Optional[dict] = None,
                 batch_size: int = 64) -> None:
        register_all_modules()
        config = model_config(config)  # a model name of the metafile
        # load_config: clear file errors and the plug-in import path of the
        # tools (custom_imports next to the config).
        if isinstance(config, str):
            cfg = load_config(config, cfg_options)
        else:
            cfg = copy.deepcopy(config)
            if cfg_options:
                cfg.merge_from_dict(cfg_options)
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        self.batch_size = batch_size
        self._galleries: Dict[str, dict] = {}
        # MMEngine's set-up: _init_model, _init_pipeline, _init_collate,
        # _init_visualizer (overridden below).
        super().__init__(
            model=cfg,
            weights=checkpoint,
            device=device,
            scope='mvlt',
            show_progress=False)

    def _init_model(self, cfg: Config, weights: Optional[str],
                    device: str) -> torch.nn.Module:
        """Build the model (no pre-training init) and load ``weights``
        with every check (:func:`mvlt.utils.checkpoint_loading.
        load_model_checkpoint`: shapes, vocabulary, label map; heads are
        checked per method)."""
        model, loaded = build_model_with_weights(cfg, weights)
        #: ``meta.dataset_meta`` of the checkpoint (class names...).
        self.dataset_meta: dict = {}
        if loaded is not None:
            self._heads = CheckpointHeads(loaded, weights)
            self.dataset_meta = dict(
                (loaded.get('meta') or {}).get('dataset_meta') or {})
        return model.to(device).eval()

    def _init_pipeline(self, cfg: Config) -> Compose:
        """The image steps of the config's test pipeline (loading, tokenising
        and packing are the inferencer's)."""
        return Compose([
            copy.deepcopy(step) for step in _pipeline_of(cfg)
            if step.get('type') not in _SKIPPED
        ])

    def _init_collate(self, cfg: Config) -> Callable:
        return pseudo_collate

    def _init_visualizer(self, cfg: Config) -> None:
        # Figures are drawn by mvlt.visualization; no MMEngine Visualizer
        # (a global instance) is made.
        return None

    @property
    def image_pipeline(self) -> Compose:
        """The image steps of the test pipeline (MMEngine's ``pipeline``)."""
        return self.pipeline

    # ------------------------------------------- BaseInferencer.__call__
    def _inputs_to_list(self, inputs) -> list:
        """One ``(image, caption)`` pair or a list of them -> a list."""
        if isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(
                inputs[1], str):
            return [inputs]
        return list(inputs)

    def preprocess(self, inputs: list, batch_size: int = 1, **kwargs):
        """Chunks of ``batch_size`` ``(image, caption)`` pairs."""
        for start in range(0, len(inputs), batch_size):
            yield inputs[start:start + batch_size]

    def forward(self, inputs: list, **kwargs) -> list:
        """ITM probabilities of a chunk of pairs (:meth:`score`)."""
        return self.score([i for i, _ in inputs],
                          [c for _, c in inputs]).tolist()

    def visualize(self, inputs: list, preds: list, **kwargs) -> None:
        """No figures: :mod:`mvlt.visualization` draws retrieval ones."""
        return None

    def postprocess(self,
                    preds: list,
                    visualization: None = None,
                    return_datasamples: bool = False,
                    **kwargs) -> dict:
        """``predictions``: one ``dict(itm_score=...)`` per pair."""
        return dict(
            predictions=[dict(itm_score=float(p)) for p in preds],
            visualization=visualization)

    # -------------------------------------------------------------- checks
    def _require(self, *heads: str) -> None:
        missing = [h for h in heads if h not in self.model.heads]
        if missing:
            raise KeyError(f'This needs the model head(s) {missing}; the '
                           f'config builds only {sorted(self.model.heads)}.')
        if self.checkpoint:
            self._heads.check(heads)

    def _has(self, head: str) -> bool:
        try:
            self._require(head)
        except KeyError:
            return False
        return True

    @property
    def has_itc(self) -> bool:
        """Whether ITC embeddings can pre-rank galleries."""
        return self._has('itc')

    @property
    def has_itm(self) -> bool:
        """Whether ITM can score (and re-rank) image-caption pairs."""
        return self._has('itm')

    # -------------------------------------------------------------- inputs
    def load_images(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """Files / RGB arrays -> uint8 (N, 3, H, W) as the model sees them
        (the test pipeline's image steps, then the data preprocessor's
        crop and resize: ``MVLTDataPreprocessor.prepare_images``).

        Raises:
            FileNotFoundError / ValueError: An unreadable file (decoded by
                :func:`mvlt.image.decode_image`, the loaders' decoder) or an
                array that is not RGB uint8 (H, W, 3).
        """
        out = []
        for image in images:
            if isinstance(image, str):
                array = decode_image(image)
            else:
                array = np.asarray(image)
                if array.ndim != 3 or array.shape[2] != 3 or \
                        array.dtype != np.uint8:
                    raise ValueError('Images must be RGB uint8 arrays (H, W, '
                                     f'3), got {array.dtype} {array.shape}.')
            results = self.image_pipeline(
                dict(
                    img=array,
                    img_shape=array.shape[:2],
                    ori_shape=array.shape[:2]))
            out.append(
                torch.from_numpy(np.ascontiguousarray(results['img'])).permute(
                    2, 0, 1))
        return self.model.data_preprocessor.prepare_images(out).cpu()

    def _pixels(self, images: Union[Sequence[ImageInput],
                                    torch.Tensor]) -> torch.Tensor:
        """``images`` as :meth:`load_images` returns them (a uint8 tensor of
        its output is passed through: prepared once, used many times)."""
        if isinstance(images, torch.Tensor):
            return images
        return self.load_images(images)

    tokenizer = property(lambda self: self.model.data_preprocessor.tokenizer)

    def tokenize_captions(self, captions: Sequence[str]) -> tuple:
        """Captions -> ``input_ids``, ``attention_mask`` (N, L) int64, by
        the model's data preprocessor."""
        return self.model.data_preprocessor.tokenize(captions)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.data_preprocessor.normalize(images.to(self.device))

    # ----------------------------------------------------------------- ITM
    def _itm(self, images: torch.Tensor, input_ids: torch.Tensor,
             attention_mask: torch.Tensor) -> np.ndarray:
        return self.model.score_pairs(
            self._normalise(images),
            input_ids.to(self.device),
            attention_mask.to(self.device),
            batch_size=self.batch_size).cpu().numpy()

    def score(self, images: Union[Sequence[ImageInput], torch.Tensor],
              captions: Sequence[str]) -> np.ndarray:
        """ITM matching probability of ``images[i]`` with ``captions[i]``
        (``images``: files / arrays, or the uint8 (N, 3, H, W) tensor of
        :meth:`load_images`).

        Returns:
            np.ndarray: (N,) probabilities in [0, 1].
        """
        if len(images) != len(captions):
            raise ValueError(f'score: {len(images)} images but '
                             f'{len(captions)} captions; pass pairs.')
        self._require('itm')
        ids, mask = self.tokenize_captions(captions)
        return self._itm(self._pixels(images), ids, mask)

    # ----------------------------------------------------------------- ITC
    def embed_images(
            self, images: Union[Sequence[ImageInput],
                                torch.Tensor]) -> np.ndarray:
        """L2-normalised ITC embeddings (N, D) of images (files / arrays, or
        the uint8 tensor of :meth:`load_images`)."""
        self._require('itc')
        return self._embed_pixels(self._pixels(images))

    def embed_captions(self, captions: Sequence[str]) -> np.ndarray:
        """L2-normalised ITC embeddings (N, D) of captions."""
        self._require('itc')
        ids, mask = self.tokenize_captions(captions)
        return self.model.embed_texts(
            ids.to(self.device),
            mask.to(self.device),
            batch_size=self.batch_size).cpu().numpy()

    def embed_composed(self, images: Sequence[ImageInput],
                       texts: Sequence[str]) -> np.ndarray:
        """L2-normalised TGIR query embeddings (N, D) of ``images[i]``
        changed as ``texts[i]`` says; they rank :meth:`embed_images`."""
        if len(images) != len(texts):
            raise ValueError(f'embed_composed: {len(images)} images but '
                             f'{len(texts)} texts; pass pairs.')
        self._require('tgir', 'itc')
        ids, mask = self.tokenize_captions(texts)
        return self.model.embed_composed(
            self._normalise(self.load_images(images)),
            ids.to(self.device),
            mask.to(self.device),
            batch_size=self.batch_size).cpu().numpy()

    def _embed_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        return self.model.embed_images(
            self._normalise(pixels), batch_size=self.batch_size).cpu().numpy()

    # ----------------------------------------------------------------- MIG
    @torch.no_grad()
    def reconstruct(self,
                    image: ImageInput,
                    mask: Optional[np.ndarray] = None,
                    seed: int = 0) -> Dict[str, np.ndarray]:
        """Masked image generation with the MIR head.

        Args:
            image: The image (resized by the test pipeline).
            mask: bool (H, W) of the resized image, True = masked; default:
                drawn by the config's mask generator from ``seed``.
            seed: Seed of the drawn mask.

        Returns:
            dict: ``original``, ``masked`` (masked pixels grey),
            ``reconstruction`` as RGB uint8 (H, W, 3) and ``mask`` (H, W).
        """
        self._require('mir')
        preprocessor = self.model.data_preprocessor
        pixels = self.load_images([image])
        _, _, height, width = pixels.shape
        generator = preprocessor.mask_generator
        if mask is None:
            if generator is None:
                raise ValueError('No mask given and the config has no '
                                 'mask_generator to draw one.')
            mask = generator(
                1,
                height,
                width,
                device='cpu',
                generator=torch.Generator().manual_seed(seed))[0]
        mask = torch.as_tensor(np.asarray(mask), dtype=torch.bool)
        if tuple(mask.shape) != (height, width):
            raise ValueError(f'mask is {tuple(mask.shape)} but the image is '
                             f'{height}x{width} after the test pipeline.')
        normalised = self._normalise(pixels)
        fill = generator.fill_value if generator is not None else 1e-6
        masked = normalised.masked_fill(mask.to(self.device)[None, None], fill)
        out = self.model.predict_outputs(dict(images=masked), tasks=('mir', ))
        mean, std = preprocessor.mean.flatten(), preprocessor.std.flatten()
        original = denormalize(normalised[0], mean, std)
        return dict(
            original=original,
            masked=masked_view(original, mask.numpy()),
            reconstruction=denormalize(out['reconstruction'][0], mean, std),
            mask=mask.numpy())
