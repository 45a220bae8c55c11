"""Inference with a trained MVLT: score pairs, rank galleries, reconstruct.

In the manner of mmpretrain's retrieval inferencers (a config + checkpoint,
a cached gallery), but not built on MMEngine's ``BaseInferencer``: its
one-input-at-a-time preprocess / forward / visualise cycle does not fit
pairs of an image and a caption, nor a cached two-sided gallery.
"""
import copy
import hashlib
from typing import Dict, List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.runner import load_checkpoint

from mvlt.registry import MODELS, TRANSFORMS
from mvlt.utils import (check_checkpoint_heads, checkpoint_state_dict,
                        register_all_modules)
from mvlt.visualization import denormalize, masked_view

ImageInput = Union[str, np.ndarray]

#: Transforms of a test pipeline the inferencer does itself.
_SKIPPED = ('LoadImage', 'LoadFashionGenImage', 'LoadImageFromFile',
            'Tokenize', 'PackMVLTInputs')


def _pipeline_of(cfg: Config) -> list:
    # The test data set's own pipeline is what evaluation runs; the
    # top-level test_pipeline variable is a fallback for model-only configs.
    loader = cfg.get('test_dataloader') or {}
    pipeline = (loader.get('dataset') or {}).get('pipeline') or \
        cfg.get('test_pipeline')
    if not pipeline:
        raise ValueError(
            'The config has neither test_pipeline nor '
            'test_dataloader.dataset.pipeline; the inferencer takes its '
            'image resizing and tokenizer from it.')
    return list(pipeline)


def _key_of(items: Sequence) -> str:
    """Cache key of a gallery: its paths / captions, or its pixels."""
    digest = hashlib.sha1()
    for item in items:
        digest.update(
            item.encode('utf-8') if isinstance(item, str) else np.
            ascontiguousarray(item).tobytes())
        digest.update(b'\0')
    return digest.hexdigest()


class MVLTInferencer:
    """Load an MVLT config and checkpoint and run it on images and captions.

    Images are file paths or RGB uint8 arrays (H, W, 3); they go through the
    config's test pipeline (e.g. foreground crop and resize) and the model's
    normalisation. Captions are strings, tokenised by the pipeline's
    ``Tokenize``.

    * :meth:`score`: ITM matching probability of image-caption pairs.
    * :meth:`rank_images` / :meth:`rank_captions`: rank a gallery for a
      caption / an image by ITM. With an ITC head and ``rerank_k``, the ITC
      similarity (gallery embeddings cached per gallery) picks the top k
      that ITM re-ranks.
    * :meth:`reconstruct`: masked image generation with the MIR head.

    Args:
        config (str | Config): Model config (its ``model`` and test
            pipeline are used).
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
        cfg = Config.fromfile(config) if isinstance(
            config, str) else copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        self.cfg = cfg
        model_cfg = copy.deepcopy(cfg.model)
        if 'backbone' in model_cfg:
            model_cfg.backbone.pop('init_cfg', None)
        self.model = MODELS.build(model_cfg)
        self.checkpoint = checkpoint
        if checkpoint:
            loaded = load_checkpoint(
                self.model, checkpoint, map_location='cpu', strict=False)
            self._state = checkpoint_state_dict(loaded)
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size
        transforms, self.tokenize = [], None
        for step in _pipeline_of(cfg):
            if step.get('type') == 'Tokenize':
                self.tokenize = TRANSFORMS.build(copy.deepcopy(step))
            elif step.get('type') not in _SKIPPED:
                transforms.append(copy.deepcopy(step))
        if self.tokenize is None:
            raise ValueError('The config pipeline has no Tokenize transform.')
        self.image_pipeline = Compose(transforms)
        self._galleries: Dict[str, dict] = {}

    # -------------------------------------------------------------- checks
    def _require(self, *heads: str) -> None:
        missing = [h for h in heads if h not in self.model.heads]
        if missing:
            raise KeyError(f'This needs the model head(s) {missing}; the '
                           f'config builds only {sorted(self.model.heads)}.')
        if self.checkpoint:
            check_checkpoint_heads(self._state, heads, self.checkpoint)

    @property
    def has_itc(self) -> bool:
        """Whether ITC embeddings can pre-rank galleries."""
        try:
            self._require('itc')
        except KeyError:
            return False
        return True

    # -------------------------------------------------------------- inputs
    def load_images(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """Files / RGB arrays -> uint8 (N, 3, H, W) after the test pipeline.
        """
        out = []
        for image in images:
            if isinstance(image, str):
                array = mmcv.imread(image, channel_order='rgb')
                if array is None:
                    raise FileNotFoundError(f'Cannot read image {image}.')
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
                torch.from_numpy(
                    np.ascontiguousarray(results['img'].transpose(2, 0, 1))))
        return torch.stack(out)

    def tokenize_captions(self, captions: Sequence[str]) -> tuple:
        """Captions -> ``input_ids``, ``attention_mask`` (N, L)."""
        encoded = [self.tokenize.transform(dict(caption=c)) for c in captions]
        ids = torch.from_numpy(np.stack([e['input_ids'] for e in encoded]))
        mask = torch.from_numpy(
            np.stack([e['attention_mask'] for e in encoded]))
        return ids, mask

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.data_preprocessor.normalize(images.to(self.device))

    # ----------------------------------------------------------------- ITM
    @torch.no_grad()
    def _itm(self, images: torch.Tensor, input_ids: torch.Tensor,
             attention_mask: torch.Tensor) -> np.ndarray:
        scores = []
        for start in range(0, len(images), self.batch_size):
            stop = start + self.batch_size
            batch = dict(
                images=self._normalise(images[start:stop]),
                input_ids=input_ids[start:stop].to(self.device),
                attention_mask=attention_mask[start:stop].to(self.device))
            out = self.model.predict_outputs(batch, tasks=('itm', ))
            scores.append(out['itm_score'].float().cpu().numpy())
        return np.concatenate(scores)

    def score(self, images: Sequence[ImageInput],
              captions: Sequence[str]) -> np.ndarray:
        """ITM matching probability of ``images[i]`` with ``captions[i]``.

        Returns:
            np.ndarray: (N,) probabilities in [0, 1].
        """
        if len(images) != len(captions):
            raise ValueError(f'score: {len(images)} images but '
                             f'{len(captions)} captions; pass pairs.')
        self._require('itm')
        ids, mask = self.tokenize_captions(captions)
        return self._itm(self.load_images(images), ids, mask)

    # ----------------------------------------------------------------- ITC
    @torch.no_grad()
    def _embed(self, batch_of: callable, count: int, key: str) -> np.ndarray:
        chunks = []
        for start in range(0, count, self.batch_size):
            out = self.model.predict_outputs(
                batch_of(start, start + self.batch_size), tasks=('itc', ))
            chunks.append(out[key].float().cpu().numpy())
        return np.concatenate(chunks)

    def _image_gallery(self, images: Sequence[ImageInput]) -> dict:
        key = 'images:' + _key_of(images)
        if key not in self._galleries:
            pixels = self.load_images(images)
            gallery = dict(pixels=pixels, embeds=None)
            if self.has_itc:
                gallery['embeds'] = self._embed(
                    lambda a, b: dict(images=self._normalise(pixels[a:b])),
                    len(pixels), 'itc_image_embeds')
            self._galleries[key] = gallery
        return self._galleries[key]

    def _caption_gallery(self, captions: Sequence[str]) -> dict:
        key = 'captions:' + _key_of(captions)
        if key not in self._galleries:
            ids, mask = self.tokenize_captions(captions)
            gallery = dict(ids=ids, mask=mask, embeds=None)
            if self.has_itc:
                gallery['embeds'] = self._embed(
                    lambda a, b: dict(
                        input_ids=ids[a:b].to(self.device),
                        attention_mask=mask[a:b].to(self.device)), len(ids),
                    'itc_text_embeds')
            self._galleries[key] = gallery
        return self._galleries[key]

    @staticmethod
    def _ranking(itm: np.ndarray, candidates: np.ndarray,
                 topk: Optional[int]) -> List[dict]:
        order = np.argsort(-itm, kind='stable')
        if topk is not None:
            order = order[:topk]
        return [
            dict(index=int(candidates[i]), score=float(itm[i])) for i in order
        ]

    def _candidates(self, query_embed: Optional[np.ndarray],
                    gallery_embeds: Optional[np.ndarray], size: int,
                    rerank_k: Optional[int]) -> np.ndarray:
        if rerank_k is None or rerank_k >= size:
            return np.arange(size)
        if gallery_embeds is None:
            raise KeyError('rerank_k needs the ITC head (model.heads.itc) in '
                           'the config and the checkpoint.')
        similarity = gallery_embeds @ query_embed
        return np.argsort(-similarity, kind='stable')[:rerank_k]

    def rank_images(self,
                    caption: str,
                    images: Sequence[ImageInput],
                    topk: Optional[int] = 5,
                    rerank_k: Optional[int] = None) -> List[dict]:
        """Rank a gallery of images for a caption.

        Args:
            caption: The query.
            images: The gallery (decoded, and embedded when the model has an
                ITC head, once per distinct gallery).
            topk: Results returned (None = all ranked).
            rerank_k: Re-rank only the ITC top k with ITM (None = ITM on the
                whole gallery).

        Returns:
            list[dict]: ``index`` (into ``images``) and ``score`` (ITM
            probability), best first.
        """
        self._require('itm')
        gallery = self._image_gallery(images)
        ids, mask = self.tokenize_captions([caption])
        query = None
        if rerank_k is not None and gallery['embeds'] is not None:
            query = self._embed(
                lambda a, b: dict(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device)), 1,
                'itc_text_embeds')[0]
        candidates = self._candidates(query, gallery['embeds'],
                                      len(gallery['pixels']), rerank_k)
        count = len(candidates)
        itm = self._itm(gallery['pixels'][candidates], ids.expand(count, -1),
                        mask.expand(count, -1))
        return self._ranking(itm, candidates, topk)

    def rank_captions(self,
                      image: ImageInput,
                      captions: Sequence[str],
                      topk: Optional[int] = 5,
                      rerank_k: Optional[int] = None) -> List[dict]:
        """Rank a gallery of captions for an image (see
        :meth:`rank_images`)."""
        self._require('itm')
        gallery = self._caption_gallery(captions)
        pixels = self.load_images([image])
        query = None
        if rerank_k is not None and gallery['embeds'] is not None:
            query = self._embed(
                lambda a, b: dict(images=self._normalise(pixels)), 1,
                'itc_image_embeds')[0]
        candidates = self._candidates(query, gallery['embeds'],
                                      len(gallery['ids']), rerank_k)
        count = len(candidates)
        itm = self._itm(
            pixels.expand(count, -1, -1, -1), gallery['ids'][candidates],
            gallery['mask'][candidates])
        return self._ranking(itm, candidates, topk)

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
