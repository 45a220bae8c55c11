"""Batch preparation for MVLT on the model's device."""
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmengine.dist import get_rank
from mmengine.model import BaseDataPreprocessor

from mvlt.registry import MASK_GENERATORS, MODELS
from mvlt.utils.tokenizer import build_tokenizer
from ..utils import bert_mask_tokens, sample_itm_pairs

_LABEL_FIELDS = (('product_index', 'product_index'),
                 ('category_label', 'category_labels'), ('subcategory_label',
                                                         'subcategory_labels'))


@MODELS.register_module()
class MVLTDataPreprocessor(BaseDataPreprocessor):
    """Normalise, pair and mask a batch for MVLT (one batched call each).

    In training it (1) normalises and stacks the images, (2) builds ITM pairs
    with negatives of other products (:func:`sample_itm_pairs`), (3) masks
    the captions with BERT's rule (:func:`bert_mask_tokens`) and (4) masks
    the images with the configured mask generator, filling masked pixels of
    the normalised image with the generator's ``fill_value`` (1e-6). All
    random draws come from one ``torch.Generator`` on the batch's device,
    seeded from ``seed`` (+ rank), whose state :meth:`rng_state` exposes for
    checkpoints.

    Output ``inputs`` is a dict of batch tensors (P pairs):
    ``images`` (P, 3, H, W), ``input_ids`` / ``attention_mask`` (P, L), and in
    training ``target_images``, ``image_mask`` (P, H, W), ``mlm_positions`` /
    ``mlm_labels`` (P, K), ``itm_labels`` (P,), ``num_matched`` (int) and the
    per-pair label tensors ``product_index``, ``category_labels``,
    ``subcategory_labels`` when the samples carry them. When the captions
    arrive on the host (as from a data loader), ``text_length`` (a Python
    int) is the number of leading caption positions that hold a real token
    in some caption of the batch, read before the copy to the device, so
    that the model can drop all-[PAD] columns without a host-device sync.

    Args:
        mean, std (Sequence[float]): Normalisation in the 0-255 pixel scale.
        tokenizer (str | dict): Vocabulary (see :func:`build_tokenizer`); its
            special-token ids drive caption masking.
        mask_generator (dict, optional): Image-mask strategy from
            ``MASK_GENERATORS``; None disables image masking.
        mlm_mask_ratio (float): r_l (0.15).
        mlm_mask_prob, mlm_random_prob (float): BERT's 80 / 10 split.
        itm_neg_ratio (float): Fraction of images given a wrong caption (0.5).
        itm_extra_negatives (int): Extra wrong captions per image.
        hard_negative_prob (float): Probability of a same-sub-category
            negative.
        mask_images_in_eval (bool): Also mask images outside training
            (masked image generation); ``target_images`` is then returned.
            When the data samples carry ``sample_idx`` each image's mask is
            drawn from a generator seeded with (``eval_mask_seed``,
            ``sample_idx``): the same masks in every run, whatever the batch
            size or number of processes.
        eval_mask_seed (int): Seed of those evaluation masks.
        seed (int, optional): Seed of the generator; None derives it from
            ``torch.initial_seed()`` (which MMEngine's ``randomness.seed``
            sets).
        non_blocking (bool): Asynchronous host-to-device copies.
    """

    def __init__(self,
                 mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375),
                 tokenizer: Union[str, dict, None] = None,
                 mask_generator: Optional[dict] = dict(type='RandomGridMask'),
                 mlm_mask_ratio: float = 0.15,
                 mlm_mask_prob: float = 0.8,
                 mlm_random_prob: float = 0.1,
                 itm_neg_ratio: float = 0.5,
                 itm_extra_negatives: int = 0,
                 hard_negative_prob: float = 0.0,
                 mask_images_in_eval: bool = False,
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
        self.vocab_size = len(tok)
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
        self.itm_neg_ratio = itm_neg_ratio
        self.itm_extra_negatives = itm_extra_negatives
        self.hard_negative_prob = hard_negative_prob
        self.mask_images_in_eval = mask_images_in_eval
        self.eval_mask_seed = int(eval_mask_seed)
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
        if inputs.get('images') is not None:
            batch['images'] = self.normalize(self._stack(inputs['images']))
        for key in ('input_ids', 'attention_mask'):
            if inputs.get(key) is not None:
                batch[key] = self._stack(inputs[key]).long()
        text_length = self._text_length(inputs.get('attention_mask'))
        batch.update(self._labels(data_samples))
        if training:
            batch = self._training_batch(batch)
        elif self.mask_images_in_eval and 'images' in batch and \
                self.mask_generator is not None:
            batch['target_images'] = batch['images']
            batch['images'], batch['image_mask'] = self._eval_mask_images(
                batch['images'], data_samples)
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

    def _eval_mask_images(self, images: torch.Tensor,
                          data_samples: Optional[List]) -> tuple:
        """Masks that depend on each sample's index only (evaluation)."""
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

    def _training_batch(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        for key in ('images', 'input_ids', 'attention_mask'):
            if key not in batch:
                raise KeyError(
                    f'MVLTDataPreprocessor: a training batch needs {key!r}; '
                    'check that the pipeline ends with PackMVLTInputs and '
                    'tokenizes captions.')
        images = batch['images']
        generator = self.generator(images.device)
        input_ids, attention_mask = batch['input_ids'], batch['attention_mask']
        batch_size = images.shape[0]
        product = batch.get('product_index')
        if product is None:
            # Without product ids every sample is its own product.
            product = torch.arange(batch_size, device=images.device)
        pairs = sample_itm_pairs(
            product,
            neg_ratio=self.itm_neg_ratio,
            num_extra_negatives=self.itm_extra_negatives,
            group=batch.get('subcategory_labels'),
            hard_negative_prob=self.hard_negative_prob,
            generator=generator)

        maskable = attention_mask.bool() & ~torch.isin(input_ids,
                                                       self.special_ids)
        masked_text = bert_mask_tokens(
            input_ids,
            maskable,
            mask_token_id=self.mask_token_id,
            vocab_size=self.vocab_size,
            mask_ratio=self.mlm_mask_ratio,
            mask_prob=self.mlm_mask_prob,
            random_prob=self.mlm_random_prob,
            generator=generator)

        if self.mask_generator is not None:
            masked_images, image_mask = self._mask_images(images, generator)
        else:
            masked_images = images
            image_mask = torch.zeros_like(images[:, 0], dtype=torch.bool)

        img, txt = pairs.image_index, pairs.text_index
        out = dict(
            images=masked_images[img],
            target_images=images[img],
            image_mask=image_mask[img],
            input_ids=masked_text.input_ids[txt],
            attention_mask=attention_mask[txt],
            mlm_positions=masked_text.positions[txt],
            mlm_labels=masked_text.labels[txt],
            itm_labels=pairs.labels,
            num_matched=pairs.num_matched,
            image_index=img,
            text_index=txt)
        for key in ('product_index', 'category_labels', 'subcategory_labels'):
            if key in batch:
                out[key] = batch[key][img]
        return out
