"""Batch preparation for MVLT on the model's device."""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import get_rank
from mmengine.model import BaseDataPreprocessor

from mvlt.deploy.preprocessing import prepare_image
from mvlt.image import RESIZE_KERNELS
from mvlt.registry import MASK_GENERATORS, MODELS
from mvlt.text.tokenizer import CaptionEncoder, build_tokenizer
from ..utils import bert_mask_tokens
from .image_ops import ImageBatch, crop_resize, decode_images, foreground_boxes

#: Keys of ``foreground_crop`` and their defaults (the authors' reference
#: code trims the white background; threshold / margin: docs/method.md 1).
CROP_DEFAULTS = dict(
    threshold=240, margin=0.03, min_fraction=0.005, square=True, pad_val=255)

_LABEL_FIELDS = (('product_index', 'product_index'),
                 ('category_label', 'category_labels'), ('subcategory_label',
                                                         'subcategory_labels'))


@MODELS.register_module()
class MVLTDataPreprocessor(BaseDataPreprocessor):
    """Prepare, normalise, pair and mask a batch for MVLT (one batched call
    each), on the model's device.

    It owns what the model needs to know of its inputs, stated once: the
    tokenizer, the caption length ``text_len`` and the image size
    ``img_size`` (the backbone takes both from here). Images arrive as
    uint8 (3, H, W) tensors of any size and captions as text (as
    ``PackMVLTInputs`` packs them); here the white background is cropped
    (``foreground_crop``, once per batch instead of per sample in the loader
    workers), the crop resized to ``img_size`` and each distinct caption
    tokenised once (:class:`mvlt.text.tokenizer.CaptionEncoder`). Images
    already at ``img_size`` and pre-tokenised captions (``input_ids`` /
    ``attention_mask``) pass through.

    In training it also (1) masks the captions with BERT's rule
    (:func:`bert_mask_tokens`) and (2) masks the images with the configured
    mask generator, filling masked pixels of the normalised image with the
    generator's ``fill_value`` (1e-6); the model then pairs images with
    captions (``MVLT(itm_sampler=...)``). All random draws come from one
    ``torch.Generator`` on the batch's device (:meth:`generator`, shared
    with the model's negative sampler), seeded from ``seed`` (+ rank), whose
    state :meth:`rng_state` exposes for checkpoints.

    Output ``inputs`` is a dict of batch tensors (B samples): ``images``
    (B, 3, H, W), ``input_ids`` / ``attention_mask`` (B, L), the label
    tensors ``product_index``, ``category_labels``, ``subcategory_labels``
    when the samples carry them, and in training ``target_images`` (the
    unmasked images), ``image_mask`` (B, H, W), ``mlm_positions`` /
    ``mlm_labels`` (B, K). When the captions arrive on the host (as from a
    data loader), ``text_length`` (a Python int) is the number of leading
    caption positions that hold a real token in some caption of the batch,
    read before the copy to the device, so that the model can drop
    all-[PAD] columns without a host-device sync.

    Args:
        mean, std (Sequence[float]): Normalisation in the 0-255 pixel scale.
        tokenizer (str | dict): Vocabulary (see :func:`build_tokenizer`); its
            special-token ids drive caption masking.
        text_len (int): Caption length L in word pieces, [CLS] and [SEP]
            included (128 in the paper).
        img_size (int | tuple, optional): Model input (height, width); None
            takes images as they come (they must share one size).
        foreground_crop (dict, optional): Crop the near-white background to
            the garment's box, padded to a square with white, before
            resizing: keys ``threshold`` (240), ``margin`` (0.03),
            ``min_fraction`` (0.005), ``square`` (True), ``pad_val`` (255)
            (:func:`~.image_ops.foreground_boxes`). None keeps whole images.
        resize_kernel (str): How the crop is padded and resized
            (:mod:`mvlt.image.geometry`): ``'cv2'`` (default, on every
            device: OpenCV's ``INTER_LINEAR`` on the host, so a checkpoint
            sees the same pixels on a CPU and on a GPU) or ``'torch'``
            (``F.interpolate`` on the model's device, within 1 grey level;
            keeps a GPU's batch on the GPU).
        mask_generator (dict, optional): Image-mask strategy from
            ``MASK_GENERATORS``; None disables image masking.
        mlm_mask_ratio (float): r_l (0.15).
        mlm_mask_prob, mlm_random_prob (float): BERT's 80 / 10 split.
        eval_mask_seed (int): Seed of the masks of masked image generation
            (:meth:`mask_for_generation`).
        seed (int, optional): Seed of the generator; None derives it from
            ``torch.initial_seed()`` (which MMEngine's ``randomness.seed``
            sets).
        non_blocking (bool): Asynchronous host-to-device copies.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 tokenizer: Union[str, dict, None] = None,
                 text_len: int = 128,
                 img_size: Union[int, Sequence[int], None] = None,
                 foreground_crop: Optional[dict] = None,
                 resize_kernel: str = 'cv2',
                 mask_generator: Optional[dict] = dict(type='RandomGridMask'),
                 mlm_mask_ratio: float = 0.15,
                 mlm_mask_prob: float = 0.8,
                 mlm_random_prob: float = 0.1,
                 eval_mask_seed: int = 0,
                 seed: Optional[int] = None,
                 non_blocking: bool = True) -> None:
        super().__init__(non_blocking=non_blocking)
        self.register_buffer('mean', torch.tensor(mean).view(-1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).view(-1, 1, 1), False)
        if tokenizer is None:
            raise ValueError(
                'MVLTDataPreprocessor needs tokenizer=dict(vocab_file=...) to '
                'know the [MASK] and special-token ids; set '
                'model.data_preprocessor.tokenizer in the config.')
        tok = build_tokenizer(tokenizer)
        #: The tokenizer (a transformers ``PreTrainedTokenizerFast``).
        self.tokenizer = tok
        self.vocab_size = len(tok)
        self.text_len = int(text_len)
        self.caption_encoder = CaptionEncoder(tok, self.text_len)
        self.img_size = None if img_size is None else ((
            img_size, img_size) if isinstance(img_size, int) else tuple(
                int(v) for v in img_size))
        if foreground_crop is not None:
            unknown = set(foreground_crop) - set(CROP_DEFAULTS)
            if unknown:
                raise KeyError(
                    f'MVLTDataPreprocessor: foreground_crop has unknown keys '
                    f'{sorted(unknown)}; allowed: {sorted(CROP_DEFAULTS)}.')
            foreground_crop = dict(CROP_DEFAULTS, **foreground_crop)
        self.foreground_crop = foreground_crop
        if resize_kernel not in RESIZE_KERNELS:
            raise ValueError(
                f'MVLTDataPreprocessor: resize_kernel must be one of '
                f'{RESIZE_KERNELS}, got {resize_kernel!r}.')
        self.resize_kernel = resize_kernel
        self.mask_token_id = tok.mask_token_id
        self.pad_token_id = tok.pad_token_id
        self.register_buffer(
            'special_ids',
            torch.tensor(sorted(set(tok.all_special_ids)), dtype=torch.long),
            False)
        self.mask_generator = MASK_GENERATORS.build(
            mask_generator) if mask_generator is not None else None
        self.mlm_mask_ratio = mlm_mask_ratio
        self.mlm_mask_prob = mlm_mask_prob
        self.mlm_random_prob = mlm_random_prob
        self.eval_mask_seed = int(eval_mask_seed)
        self.training_needs: Optional[frozenset] = None
        self.seed = seed
        self._generator: Optional[torch.Generator] = None

    # ----------------------------------------------------------------- RNG
    def generator(self, device: torch.device) -> torch.Generator:
        """The generator of all random draws, created on first use."""
        if self._generator is None or self._generator.device != device:
            seed = self.seed if self.seed is not None else \
                torch.initial_seed() % (2**31)
            state = None if self._generator is None else \
                self._generator.get_state()
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(int(seed) + 1000003 * get_rank())
            if state is not None and device.type == 'cpu':
                self._generator.set_state(state)
        return self._generator

    def rng_state(self) -> Optional[torch.Tensor]:
        """State of the generator (None before the first batch)."""
        return None if self._generator is None else \
            self._generator.get_state()

    def load_rng_state(self,
                       state: torch.Tensor,
                       device: Union[str, torch.device, None] = None) -> None:
        """Restore the generator state saved by :meth:`rng_state`."""
        device = torch.device(device) if device is not None else self.device
        self._generator = None
        self.generator(device).set_state(state)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _collate_inputs(inputs: Any) -> Dict[str, Any]:
        """Accept a dict of lists (pseudo_collate) or a list of dicts."""
        if isinstance(inputs, dict):
            return inputs
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(
                inputs[0], dict):
            return {k: [item[k] for item in inputs] for k in inputs[0]}
        raise TypeError(
            'MVLTDataPreprocessor expects inputs as dicts with images / '
            f'input_ids / attention_mask, got {type(inputs).__name__}; pack '
            'samples with PackMVLTInputs.')

    def _stack(self, value: Any) -> torch.Tensor:
        if isinstance(value, (list, tuple)):
            value = torch.stack(list(value))
        return value.to(self.device, non_blocking=self._non_blocking)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 / float (B, 3, H, W) in 0-255 -> normalised float32."""
        return (images.float() - self.mean) / self.std

    def prepare_images(self, images: ImageBatch) -> torch.Tensor:
        """Loader images -> uint8 (B, 3, img_size) on the model's device.

        Crops the background (``foreground_crop``) and resizes to
        ``img_size`` (bilinear, half-pixel centres) with the
        ``resize_kernel``: by default OpenCV on the host on every device
        (on a CPU each image through
        :func:`mvlt.deploy.preprocessing.prepare_image`, which the ONNX
        Runtime backend runs too),
        which gives exactly the pixels of the former per-sample pipeline
        (``ForegroundCrop`` + ``Resize``) and is the faster of the two on a
        CPU (measured on 2 EPYC cores, 256 px inputs: 0.50 vs 0.59 ms an
        image for a batch of 64 -> 64 px, 0.67 vs 0.87 ms for 150 -> 256
        px; ``docs/benchmark.md``); ``'torch'`` keeps the work on an
        accelerator (within 1 grey level of OpenCV).

        Args:
            images: uint8 (3, H, W) tensors (sizes may differ), encoded
                files as 1-D uint8 tensors (decoded here on the device:
                :func:`~.image_ops.decode_images`), or one (B, 3, H, W)
                tensor.

        Returns:
            Tensor: uint8 (B, 3, height, width).
        """
        if isinstance(images, torch.Tensor):
            images = list(images)
        if any(image.ndim == 1 for image in images):
            images = decode_images(images, self.device)
        images = [
            image.to(self.device, non_blocking=self._non_blocking)
            for image in images
        ]
        sizes = {tuple(image.shape[1:]) for image in images}
        size = self.img_size or (next(iter(sizes))
                                 if len(sizes) == 1 else None)
        if size is None:
            raise ValueError(
                'MVLTDataPreprocessor: images of different sizes '
                f'{sorted(sizes)} and no img_size to resize them to; set '
                'model.data_preprocessor.img_size.')
        crop = self.foreground_crop
        if crop is None and sizes == {size}:
            return torch.stack(images)
        if self.resize_kernel == 'cv2' and self.device.type == 'cpu':
            # The one CPU implementation (box, crop, padding, resize), shared
            # with the torch-free ONNX Runtime backend.
            return torch.stack([
                torch.from_numpy(
                    prepare_image(image.permute(1, 2, 0).numpy(), size,
                                  crop)).permute(2, 0, 1) for image in images
            ])
        boxes = self._boxes(images)
        return crop_resize(images, boxes, size,
                           crop['pad_val'] if crop else 255,
                           bool(crop and crop['square']), self.resize_kernel)

    def _boxes(self, images: List[torch.Tensor]) -> torch.Tensor:
        """(B, 4) crop boxes: the foreground, or the whole image."""
        crop = self.foreground_crop
        if crop is None:
            return torch.tensor([[0, 0, im.shape[2], im.shape[1]]
                                 for im in images])
        options = dict(
            threshold=crop['threshold'],
            margin=crop['margin'],
            min_fraction=crop['min_fraction'])
        if len({tuple(im.shape) for im in images}) == 1:
            return foreground_boxes(torch.stack(images), **options)
        return torch.cat(
            [foreground_boxes(im[None], **options) for im in images])

    def tokenize(self,
                 captions: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Captions -> ``input_ids`` and ``attention_mask`` (N, text_len)
        int64 host tensors; each distinct caption is tokenised once."""
        ids, mask = self.caption_encoder(list(captions))
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def _labels(self, data_samples: Optional[List]) -> Dict[str, torch.Tensor]:
        labels = {}
        if not data_samples:
            return labels
        for field, key in _LABEL_FIELDS:
            if all(field in sample for sample in data_samples):
                values = [int(sample.get(field)) for sample in data_samples]
                labels[key] = torch.tensor(
                    values, dtype=torch.long).to(
                        self.device, non_blocking=self._non_blocking)
        return labels

    def _mask_images(self, images: torch.Tensor, generator: torch.Generator):
        batch, _, height, width = images.shape
        mask = self.mask_generator(
            batch, height, width, device=images.device, generator=generator)
        return self.mask_generator.apply(images, mask), mask

    # -------------------------------------------------------------- forward
    def forward(self, data: dict, training: bool = False) -> dict:
        """Turn a collated batch into model inputs (see class docstring)."""
        inputs = self._collate_inputs(data['inputs'])
        data_samples = data.get('data_samples')
        batch: Dict[str, Any] = {}
        for key in ('images', 'gallery_images'):
            # gallery_images: the target images of TGIR samples.
            if inputs.get(key) is not None:
                batch[key] = self.normalize(self.prepare_images(inputs[key]))
        if inputs.get('input_ids') is None and \
                inputs.get('captions') is not None:
            inputs = dict(inputs)
            inputs['input_ids'], inputs['attention_mask'] = self.tokenize(
                inputs['captions'])
            if training:
                # Which captions are identical (mvlt.text.caption_key):
                # ITM / ITC negatives leave them out.
                batch['caption_key'] = self._stack(
                    torch.from_numpy(
                        self.caption_encoder.key_ids(list(
                            inputs['captions']))))
        for key in ('input_ids', 'attention_mask'):
            if inputs.get(key) is not None:
                batch[key] = self._stack(inputs[key]).long()
        text_length = self._text_length(inputs.get('attention_mask'))
        batch.update(self._labels(data_samples))
        if training:
            batch = self._training_batch(batch)
        if text_length is not None:
            batch['text_length'] = text_length
        return dict(inputs=batch, data_samples=data_samples)

    @staticmethod
    def _text_length(attention_mask: Any) -> Optional[int]:
        """Last real-token column + 1 over the batch, from host tensors only
        (None when the masks are already on an accelerator)."""
        if attention_mask is None:
            return None
        if isinstance(attention_mask, (list, tuple)):
            if not all(m.device.type == 'cpu' for m in attention_mask):
                return None
            attention_mask = torch.stack(list(attention_mask))
        elif attention_mask.device.type != 'cpu':
            return None
        used = attention_mask.bool().any(dim=0).nonzero()
        return int(used.max()) + 1 if used.numel() else 0

    def mask_for_generation(self, images: torch.Tensor,
                            data_samples: Optional[List]) -> tuple:
        """Masked images and masks for masked image generation (MIG).

        When the data samples carry ``sample_idx`` each image's mask is
        drawn from a generator seeded with (``eval_mask_seed``,
        ``sample_idx``): the same masks in every run, whatever the batch
        size or number of processes; otherwise from the preprocessor's
        generator.

        Args:
            images (Tensor): (B, 3, H, W) normalised images.
            data_samples (list, optional): The batch's data samples.

        Returns:
            tuple: masked images (B, 3, H, W) and masks bool (B, H, W).

        Raises:
            ValueError: No ``mask_generator`` is configured.
        """
        if self.mask_generator is None:
            raise ValueError('Masked image generation needs '
                             'model.data_preprocessor.mask_generator.')
        indices = [sample.get('sample_idx') for sample in data_samples or []]
        if len(indices) != images.shape[0] or any(i is None for i in indices):
            return self._mask_images(images, self.generator(images.device))
        _, _, height, width = images.shape
        masks = []
        for index in indices:
            generator = torch.Generator().manual_seed(
                (self.eval_mask_seed << 32) + int(index))
            masks.append(
                self.mask_generator(
                    1, height, width, device='cpu', generator=generator))
        mask = torch.cat(masks).to(images.device)
        return self.mask_generator.apply(images, mask), mask

    def set_training_needs(self, needs: Optional[Sequence[str]]) -> None:
        """What training batches must hold, from the heads being trained.

        ``'text_mask'``: BERT-masked captions (MLM); ``'image_mask'``:
        masked images (MIR). Parts no head needs are not made (a model that
        only classifies sees its images and captions as they are). None:
        all of them. :class:`~mvlt.models.MVLT` sets this when it is built.
        """
        self.training_needs = None if needs is None else frozenset(needs)

    def _needs(self, part: str) -> bool:
        return self.training_needs is None or part in self.training_needs

    def _training_batch(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        for key in ('images', 'input_ids', 'attention_mask'):
            if key not in batch:
                raise KeyError(
                    f'MVLTDataPreprocessor: a training batch needs {key!r}; '
                    'check that the pipeline ends with PackMVLTInputs and '
                    'that the samples carry captions.')
        images = batch['images']
        generator = self.generator(images.device)
        input_ids, attention_mask = batch['input_ids'], batch['attention_mask']
        out = dict(batch, target_images=images)
        if 'product_index' not in out:
            # Without product ids every sample is its own product.
            out['product_index'] = torch.arange(
                images.shape[0], device=images.device)
        if self._needs('text_mask'):
            maskable = attention_mask.bool() & ~torch.isin(
                input_ids, self.special_ids)
            masked_text = bert_mask_tokens(
                input_ids,
                maskable,
                mask_token_id=self.mask_token_id,
                vocab_size=self.vocab_size,
                mask_ratio=self.mlm_mask_ratio,
                mask_prob=self.mlm_mask_prob,
                random_prob=self.mlm_random_prob,
                generator=generator)
            out.update(
                input_ids=masked_text.input_ids,
                mlm_positions=masked_text.positions,
                mlm_labels=masked_text.labels)
        if self._needs('image_mask') and self.mask_generator is not None:
            out['images'], out['image_mask'] = self._mask_images(
                images, generator)
        else:
            out['image_mask'] = torch.zeros_like(
                images[:, 0], dtype=torch.bool)
        return out
