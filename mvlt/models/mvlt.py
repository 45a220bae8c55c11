"""MVLT: the masked vision-language transformer as an MMEngine model."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mvlt.registry import MODELS, NEGATIVE_SAMPLERS
from .backbones import UnimodalFeatures, VLFeatures
from .compiling import compile_regions, parse_compile, recompile_scope
from .heads import bind_gallery_heads
from .scoring import RetrievalScoringMixin
from .training import TrainingLossMixin
from .utils import (backbone_config, check_vocabulary, head_config,
                    unmask_input_ids)

#: Modalities a head may require that the joint (image + caption) pass does
#: not give: separate image-only / text-only passes (the ITC head).
UNIMODAL_MODALITIES = ('visual_only', 'text_only')


@MODELS.register_module()
class MVLT(TrainingLossMixin, RetrievalScoringMixin, BaseModel):
    """PVT-VL encoder + pre-training / downstream heads (paper section 3).

    ``loss`` runs the encoder on the masked batch and sums the losses of the
    heads named in ``train_objectives`` (each head applies its own weight:
    w = (10, 1, 1) for MIR, ITM, MLM by default). ``predict`` runs only the
    heads asked for and only the encoder halves they read.

    The scoring API used by every retrieval caller (the test loop, the
    inferencer, the benchmark, the catalogue search):
    :meth:`score_pairs` (ITM matching probability of image-caption pairs),
    :meth:`embed_images` / :meth:`embed_texts` (ITC embeddings of unimodal
    passes). ITC top-k selection and ITM re-ranking are
    :func:`mvlt.models.utils.topk_candidates` / :func:`~.rerank`.

    Args:
        backbone (dict): ``PVTVL`` config.
        heads (dict): Head configs by name: ``mir``, ``itm``, ``mlm``,
            ``category``, ``itc`` (contrastive, on separate image-only and
            text-only passes) and plug-ins. A None entry is not built; this
            is how an objective is switched off (paper table 3d). In the
            backbone and head configs ``vocab_size=None`` takes the size of
            the preprocessor's tokenizer; the backbone's ``img_size=None`` /
            ``text_len=None`` take the preprocessor's.
        train_objectives (Sequence[str], optional): Heads whose loss counts in
            training; default: every built head.
        predict_tasks (Sequence[str], optional): Heads run by ``predict``
            when the caller names none; default: ``('itm',)`` when an ITM
            head is built, else every head.
        itm_sampler (dict, optional): How ITM pairs images with wrong
            captions: a ``NEGATIVE_SAMPLERS`` config (``'random'``: the
            paper, default; ``'same-group'``; ``'itc-hard'``: drawn by ITC
            similarity, needs an ITC head; or a plug-in).
        masked_image_pass (str): ``'shared'`` (the paper): one encoder pass
            on the masked images serves every objective. ``'separate'`` (the
            authors' reference code): ITM / MLM see the unmasked images and
            MIR gets its own pass on the masked images of its rows; costs one
            more pass over the matched pairs, and ITM learns much sooner.
        trim_padding (bool): Drop caption columns that are [PAD] in every
            caption of the batch before the encoder runs. Exact when the
            backbone masks [PAD] keys (``use_key_padding_mask``): no real
            token attends to them, so every loss and score is unchanged.
        compile (bool | dict): Opt-in ``torch.compile``
            (:func:`~mvlt.models.compiling.parse_compile`): by default each
            PVT-VL block on its own (regional: blocks of equal shapes share
            compiled code, static shapes with caption lengths cut to
            multiples of ``caption_bucket``); ``regions='model'`` compiles
            the whole forward. The data preprocessor and the optimizer stay
            eager (MMEngine's ``cfg.compile`` compiles the whole
            ``train_step``, which dynamo 2.14 cannot trace through
            MMEngine's optimizer wrapper). Losses equal eager ones within
            float rounding (tests/test_models/test_fast_vs_baseline.py).
        data_preprocessor (dict): ``MVLTDataPreprocessor`` config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 heads: Dict[str, Optional[dict]],
                 train_objectives: Optional[Sequence[str]] = None,
                 predict_tasks: Optional[Sequence[str]] = None,
                 itm_sampler: Optional[dict] = dict(
                     type='RandomNegatives', neg_ratio=0.5),
                 masked_image_pass: str = 'shared',
                 trim_padding: bool = True,
                 compile: Union[bool, dict] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            raise ValueError('MVLT needs model.data_preprocessor '
                             "(type='MVLTDataPreprocessor', tokenizer=...).")
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if masked_image_pass not in ('shared', 'separate'):
            raise ValueError("MVLT: masked_image_pass must be 'shared' or "
                             f"'separate', got {masked_image_pass!r}.")
        self.masked_image_pass = masked_image_pass
        self.trim_padding = trim_padding
        self.backbone = MODELS.build(
            backbone_config(backbone, self.data_preprocessor))
        check_vocabulary(self.backbone, self.data_preprocessor)
        self.heads = nn.ModuleDict({
            name:
            MODELS.build(
                head_config(cfg, self.data_preprocessor, self.backbone))
            for name, cfg in heads.items() if cfg is not None
        })
        if not self.heads:
            raise ValueError('MVLT: model.heads builds no head; enable at '
                             'least one of mir / itm / mlm / category.')
        for head in self.heads.values():
            if hasattr(head, 'tie_weights'):
                head.tie_weights(self.backbone.word_embeddings)
            if hasattr(head, 'bind'):  # heads that run other heads
                head.bind(self)
        bind_gallery_heads(self.heads)
        self.train_objectives = self._check_names(
            'train_objectives', train_objectives or tuple(self.heads))
        self.itm_sampler = NEGATIVE_SAMPLERS.build(
            itm_sampler) if itm_sampler is not None else None
        if getattr(self.itm_sampler, 'needs_similarity', False) and \
                'itc' not in self.heads:
            raise ValueError(
                f'MVLT: itm_sampler {type(self.itm_sampler).__name__} draws '
                "negatives by ITC similarity; add model.heads.itc (type="
                "'ITCHead').")
        if hasattr(self.data_preprocessor, 'set_training_needs'):
            self.data_preprocessor.set_training_needs({
                need
                for name in self.train_objectives
                for need in self.heads[name].batch_needs
            })
        if predict_tasks is None:
            predict_tasks = ('itm', ) if 'itm' in self.heads else tuple(
                self.heads)
        self.predict_tasks = self._check_names('predict_tasks', predict_tasks)
        self.compile_options = parse_compile(compile)
        self._compiled_regions = compile_regions(
            self, self.compile_options) if self.compile_options else 0
        # (id of the model it was made for, compiled forward): a deep copy
        # (e.g. an EMA model) compiles its own.
        self._compiled_forward: Optional[tuple] = None

    def _check_names(self, field: str, names: Sequence[str]) -> tuple:
        names = tuple(names)
        unknown = [n for n in names if n not in self.heads]
        if unknown:
            raise KeyError(
                f'MVLT: {field} names {unknown} but the model builds only '
                f'{sorted(self.heads)}; add them to model.heads or drop them '
                f'from model.{field}.')
        return names

    # -------------------------------------------------------------- encoder
    def extract_feat(
        self,
        inputs: Dict[str, torch.Tensor],
        modalities: Sequence[str] = ('visual', 'text')
    ) -> VLFeatures:
        """Run the joint encoder on the modalities asked for.

        Args:
            inputs (dict): ``images`` (B, 3, H, W) normalised, ``input_ids``
                / ``attention_mask`` (B, L).
            modalities (Sequence[str]): ``'visual'`` and / or ``'text'``.
        """
        images = inputs.get('images') if 'visual' in modalities else None
        input_ids = inputs.get('input_ids') if 'text' in modalities else None
        attention_mask = inputs.get('attention_mask') \
            if input_ids is not None else None
        return self.backbone(images, input_ids, attention_mask)

    def _encode(self,
                inputs: Dict[str, torch.Tensor],
                heads: Sequence[str],
                allow_sync: bool = False) -> VLFeatures:
        """The joint pass that ``heads`` read, and nothing more.

        When every head reads only the leading caption token(s) of T^4 (its
        ``text_queries``; the ITM head's [CLS]), the last block computes
        just those and all-[PAD] caption columns are cut
        (:meth:`_trim_padding`). Neither changes an output.
        """
        modalities = self._modalities(heads)
        queries = {
            getattr(self.heads[name], 'text_queries', None)
            for name in heads
        }
        text_queries = queries.pop() if len(queries) == 1 else None
        if text_queries is not None and 'text' in modalities and \
                'input_ids' in inputs:
            inputs = self._trim_padding(inputs, allow_sync, text_queries)
        else:
            text_queries = None
        images = inputs.get('images') if 'visual' in modalities else None
        input_ids = inputs.get('input_ids') if 'text' in modalities else None
        attention_mask = inputs.get('attention_mask') \
            if input_ids is not None else None
        return self.backbone(
            images, input_ids, attention_mask, text_queries=text_queries)

    def _trim_padding(self,
                      inputs: Dict[str, torch.Tensor],
                      allow_sync: bool,
                      min_length: int = 1) -> Dict[str, torch.Tensor]:
        """Drop caption columns that are [PAD] in every caption.

        With the key padding mask on, no real token attends to a [PAD] key,
        so cutting trailing all-[PAD] columns leaves every real token's
        features, and so every loss and score, unchanged. The kept length is
        ``batch['text_length']`` (read on the host by the data
        preprocessor) rounded up to a multiple of 8 (of the compile
        ``caption_bucket`` when compiled) so that few shapes occur;
        without it the mask is read from the device only when
        ``allow_sync`` (evaluation). MLM slots past the cut are unused ones
        (label -100) and move to position 0 ([CLS]).
        """
        attention_mask = inputs.get('attention_mask')
        if not self.trim_padding or attention_mask is None or \
                'input_ids' not in inputs or not getattr(
                    self.backbone, 'use_key_padding_mask', False):
            return inputs
        length = inputs.get('text_length')
        if length is None:
            if not allow_sync:
                return inputs
            used = attention_mask.bool().any(dim=0).nonzero()
            length = int(used.max()) + 1 if used.numel() else 0
        full = attention_mask.shape[1]
        bucket = self.compile_options['caption_bucket'] \
            if self.compile_options else 8
        keep = min(full, max(min_length, -(-length // bucket) * bucket))
        if keep >= full:
            return inputs
        trimmed = dict(inputs)
        trimmed['input_ids'] = inputs['input_ids'][:, :keep]
        trimmed['attention_mask'] = attention_mask[:, :keep]
        if 'mlm_positions' in inputs:
            positions = inputs['mlm_positions']
            trimmed['mlm_positions'] = positions.masked_fill(
                positions >= keep, 0)
        return trimmed

    def extract_unimodal_feat(self,
                              inputs: Dict[str, torch.Tensor],
                              modalities: Sequence[str] = UNIMODAL_MODALITIES,
                              num_rows: Optional[int] = None
                              ) -> UnimodalFeatures:
        """Image-only and / or text-only encoder passes (for ITC).

        They read the unmasked inputs: ``target_images`` when the batch has
        masked images, and the captions with BERT masking undone. A modality
        the batch lacks gives None.

        Args:
            inputs (dict): Batch from the data preprocessor.
            modalities (Sequence[str]): ``'visual_only'`` / ``'text_only'``.
            num_rows (int, optional): Use the first rows only.
        """
        rows = slice(None) if num_rows is None else slice(0, num_rows)
        images = inputs.get('target_images', inputs.get('images'))
        visual = text = None
        if 'visual_only' in modalities and images is not None:
            visual = self.backbone(images[rows], None, None)
        input_ids = inputs.get('input_ids')
        if 'text_only' in modalities and input_ids is not None:
            if 'mlm_positions' in inputs:
                input_ids = unmask_input_ids(input_ids,
                                             inputs['mlm_positions'],
                                             inputs['mlm_labels'])
            attention_mask = inputs.get('attention_mask')
            text = self.backbone(
                None, input_ids[rows],
                attention_mask[rows] if attention_mask is not None else None)
        return UnimodalFeatures(visual=visual, text=text)

    def _unimodal_feat(self,
                       inputs: Dict[str, torch.Tensor],
                       head_names: Sequence[str],
                       num_rows: Optional[int] = None
                       ) -> Optional[UnimodalFeatures]:
        needed = set(self._modalities(head_names)) & set(UNIMODAL_MODALITIES)
        if not needed:
            return None
        return self.extract_unimodal_feat(inputs, tuple(needed), num_rows)

    def _joint_heads(self, head_names: Sequence[str]) -> tuple:
        """The heads that read the joint image + caption pass."""
        return tuple(
            name for name in head_names
            if not set(self.heads[name].requires) <= set(UNIMODAL_MODALITIES))

    def _modalities(self, head_names: Sequence[str]) -> tuple:
        needed = set()
        for name in head_names:
            needed.update(self.heads[name].requires)
        return tuple(sorted(needed))

    # -------------------------------------------------------------- forward
    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor'):
        """MMEngine entry point: ``mode`` is 'loss', 'predict' or 'tensor'.

        Args:
            inputs (dict): Batch from :class:`MVLTDataPreprocessor`.
            data_samples (list, optional): Per-sample meta and labels.
            mode (str): 'loss' -> dict of losses; 'predict' -> data samples
                with predictions; 'tensor' -> :class:`VLFeatures`.
        """
        options = self.compile_options
        if options is None or 'model' not in options['regions']:
            with recompile_scope(options, self._compiled_regions, inputs):
                return self._forward(inputs, data_samples, mode)
        if self._compiled_forward is None or \
                self._compiled_forward[0] != id(self):
            self._compiled_forward = (id(self),
                                      torch.compile(self._forward,
                                                    **options['torch']))
        with recompile_scope(options, self._compiled_regions, inputs):
            return self._compiled_forward[1](inputs, data_samples, mode)

    def _forward(self, inputs: Dict[str, torch.Tensor],
                 data_samples: Optional[List[BaseDataElement]], mode: str):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'MVLT: invalid mode {mode!r}; use loss, '
                           'predict or tensor.')

    def predict_outputs(self,
                        inputs: Dict[str, torch.Tensor],
                        tasks: Optional[Sequence[str]] = None
                        ) -> Dict[str, torch.Tensor]:
        """Batched predictions of the heads in ``tasks`` as a dict.

        Args:
            inputs (dict): Batch from the data preprocessor.
            tasks (Sequence[str], optional): Head names; default:
                ``predict_tasks``.

        Returns:
            dict: Each head's outputs, first dimension = batch (see
            :meth:`predict`).

        Raises:
            RuntimeError: A compiled model met more shapes than its
                recompile limit (:func:`~.compiling.recompile_scope`).
        """
        with recompile_scope(self.compile_options, self._compiled_regions,
                             inputs):
            return self._predict_outputs(inputs, tasks)

    def _predict_outputs(self, inputs: Dict[str, torch.Tensor],
                         tasks: Optional[Sequence[str]]
                         ) -> Dict[str, torch.Tensor]:
        tasks = self._check_names('tasks', tasks or self.predict_tasks)
        joint = self._joint_heads(tasks)
        # At most one host read per evaluation batch (never in training).
        feats = self._encode(inputs, joint, allow_sync=True) if joint else \
            None
        unimodal = self._unimodal_feat(inputs, tasks)
        outputs: Dict[str, torch.Tensor] = {}
        for name in tasks:
            head_feats = feats if name in joint else unimodal
            outputs.update(self.heads[name].predict(head_feats, inputs))
        return outputs

    def predict(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[BaseDataElement]] = None,
                tasks: Optional[Sequence[str]] = None
                ) -> List[BaseDataElement]:
        """Predictions of the ``tasks`` heads, one data sample each.

        Fields set: ``itm_score`` (matching probability), ``category_scores``
        / ``subcategory_scores`` (class probabilities), ``reconstruction``
        (normalised image), ``mlm_logits``, ``itc_image_embeds`` /
        ``itc_text_embeds``; plus ``image_mask`` and ``target_images`` rows
        when the images were masked.

        Predicting with MIR is masked image generation (paper section 3.3):
        unless the batch is masked already (``image_mask``), its images are
        masked first with the preprocessor's mask generator, seeded per
        sample (``MVLTDataPreprocessor.mask_for_generation``).
        """
        tasks = self._check_names('tasks', tasks or self.predict_tasks)
        if 'mir' in tasks and 'image_mask' not in inputs and \
                inputs.get('images') is not None and getattr(
                    self.data_preprocessor, 'mask_generator', None):
            masked, mask = self.data_preprocessor.mask_for_generation(
                inputs['images'], data_samples)
            inputs = dict(
                inputs,
                images=masked,
                image_mask=mask,
                target_images=inputs['images'])
        outputs = self.predict_outputs(inputs, tasks)
        for key in ('image_mask', 'target_images'):
            if key in inputs:
                outputs.setdefault(key, inputs[key])
        batch = next(iter(outputs.values())).shape[0]
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(batch)]
        for index, sample in enumerate(data_samples):
            for key, value in outputs.items():
                sample.set_field(value[index], key)
        return data_samples
