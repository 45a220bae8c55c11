"""MVLT: the masked vision-language transformer as an MMEngine model."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mvlt.registry import MODELS
from .backbones import VLFeatures
from .heads.base_head import num_loss_rows
from .heads.itc_head import UnimodalFeatures, unmask_input_ids

#: Modalities a head may require that the joint (image + caption) pass does
#: not give: separate image-only / text-only passes (the ITC head).
UNIMODAL_MODALITIES = ('visual_only', 'text_only')

#: Head name -> what ``predict`` puts in the data samples.
PREDICT_FIELDS = {
    'itm': ('itm_score', ),
    'category': ('category_scores', 'subcategory_scores'),
    'mir': ('reconstruction', ),
    'mlm': ('mlm_logits', ),
    'itc': ('itc_image_embeds', 'itc_text_embeds'),
}


@MODELS.register_module()
class MVLT(BaseModel):
    """PVT-VL encoder + pre-training / downstream heads (paper section 3).

    ``loss`` runs the encoder once on the masked batch and sums the losses of
    the heads named in ``train_objectives`` (each head applies its own weight:
    w = (10, 1, 1) for MIR, ITM, MLM by default). ``predict`` runs only the
    heads in ``predict_tasks`` and, for text-free tasks (reconstruction
    alone), only the visual half of the encoder.

    Args:
        backbone (dict): ``PVTVL`` config.
        heads (dict): Head configs by name: ``mir``, ``itm``, ``mlm``,
            ``category``, ``itc`` (contrastive, on separate image-only and
            text-only passes; for re-ranking) and plug-ins. A None entry is
            not built; this is
            how an objective is switched off (paper table 3d). In the backbone
            and head configs ``vocab_size=None`` takes the size of the
            preprocessor's tokenizer.
        train_objectives (Sequence[str], optional): Heads whose loss counts in
            training; default: every built head.
        predict_tasks (Sequence[str], optional): Heads run by ``predict``;
            default: ``('itm',)`` when an ITM head is built, else every head.
        masked_image_pass (str): ``'shared'`` (the paper): one encoder pass
            on the masked images serves every objective. ``'separate'`` (the
            authors' reference code): ITM / MLM see the unmasked images and
            MIR gets its own pass on the masked images of its rows; costs one
            more pass over the matched pairs, and ITM learns much sooner.
        compute_mode (str): ``'fast'`` runs only what a task needs, with the
            attention, MLP and MLM settings of the backbone / head configs:
            with the key padding mask on it drops caption columns that are
            [PAD] in the whole batch, and ITM-only prediction computes the
            last block for the [CLS] token alone. ``'baseline'`` behaves like
            a straightforward implementation: eager attention, plain MLPs,
            MLM logits at every position of every row, every built head in
            predict mode, no trimming of padding.
            Both give the same losses and scores; the speed benchmark runs
            them side by side. :meth:`set_compute_mode` switches a built
            model.
        compile (bool | dict): Run ``forward`` (the encoder and heads, not
            the data preprocessor or the optimizer) through
            ``torch.compile``; a dict holds its options (e.g.
            ``dict(backend='inductor', mode='max-autotune')``). Compiled on
            the first call. (MMEngine's ``cfg.compile`` compiles the whole
            ``train_step`` instead, which dynamo 2.14 cannot trace through
            MMEngine's optimizer wrapper.)
        data_preprocessor (dict): ``MVLTDataPreprocessor`` config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 heads: Dict[str, Optional[dict]],
                 train_objectives: Optional[Sequence[str]] = None,
                 predict_tasks: Optional[Sequence[str]] = None,
                 compute_mode: str = 'fast',
                 masked_image_pass: str = 'shared',
                 compile: Union[bool, dict] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            raise ValueError('MVLT needs model.data_preprocessor '
                             "(type='MVLTDataPreprocessor', tokenizer=...).")
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if compute_mode not in ('fast', 'baseline'):
            raise ValueError("MVLT: compute_mode must be 'fast' or "
                             f"'baseline', got {compute_mode!r}.")
        if masked_image_pass not in ('shared', 'separate'):
            raise ValueError("MVLT: masked_image_pass must be 'shared' or "
                             f"'separate', got {masked_image_pass!r}.")
        self.masked_image_pass = masked_image_pass
        self.compute_mode = compute_mode
        vocab_size = getattr(self.data_preprocessor, 'vocab_size', None)
        self.backbone = MODELS.build(
            self._with_vocab_size(backbone, vocab_size))
        self._check_vocabulary()
        self.heads = nn.ModuleDict({
            name:
            MODELS.build(self._with_vocab_size(cfg, vocab_size))
            for name, cfg in heads.items() if cfg is not None
        })
        if not self.heads:
            raise ValueError('MVLT: model.heads builds no head; enable at '
                             'least one of mir / itm / mlm / category.')
        for head in self.heads.values():
            if hasattr(head, 'tie_weights'):
                head.tie_weights(self.backbone.word_embeddings)
        self.train_objectives = self._check_names(
            'train_objectives', train_objectives or tuple(self.heads))
        if predict_tasks is None:
            predict_tasks = ('itm', ) if 'itm' in self.heads else tuple(
                self.heads)
        self.predict_tasks = self._check_names('predict_tasks', predict_tasks)
        self.set_compute_mode(compute_mode)
        if not isinstance(compile, (bool, dict)):
            raise TypeError('MVLT: compile must be a bool or a dict of '
                            f'torch.compile options, got {compile!r}.')
        self.compile_options = (dict(compile) if isinstance(compile, dict) else
                                {}) if compile else None
        # (id of the model it was made for, compiled function): a deep copy
        # (e.g. an EMA model) compiles its own.
        self._compiled_forward: Optional[tuple] = None

    def set_compute_mode(self, mode: str) -> None:
        """Switch every part between ``'fast'`` and ``'baseline'``.

        The one place that flips all baseline switches: each submodule with a
        ``set_compute_mode`` method (attention: eager; MLM head: logits at
        every position) follows, and ``predict`` runs every head in
        baseline mode. ``'fast'`` restores the configured settings.
        """
        if mode not in ('fast', 'baseline'):
            raise ValueError("MVLT: compute_mode must be 'fast' or "
                             f"'baseline', got {mode!r}.")
        self.compute_mode = mode
        for module in self.modules():
            if module is not self and hasattr(module, 'set_compute_mode'):
                module.set_compute_mode(mode)

    @staticmethod
    def _with_vocab_size(cfg: dict, vocab_size: Optional[int]) -> dict:
        """``vocab_size=None`` in a part's config means: the tokenizer's."""
        if 'vocab_size' in cfg and cfg['vocab_size'] is None:
            if vocab_size is None:
                raise ValueError(
                    f"{cfg.get('type')}: vocab_size=None needs a data "
                    'preprocessor with a tokenizer to take it from.')
            cfg = dict(cfg, vocab_size=vocab_size)
        return cfg

    def _check_names(self, field: str, names: Sequence[str]) -> tuple:
        names = tuple(names)
        unknown = [n for n in names if n not in self.heads]
        if unknown:
            raise KeyError(
                f'MVLT: {field} names {unknown} but the model builds only '
                f'{sorted(self.heads)}; add them to model.heads or drop them '
                f'from model.{field}.')
        return names

    def _check_vocabulary(self) -> None:
        vocab_size = getattr(self.data_preprocessor, 'vocab_size', None)
        if vocab_size is not None and vocab_size != self.backbone.vocab_size:
            raise ValueError(
                f'The tokenizer vocabulary has {vocab_size} entries but '
                f'model.backbone.vocab_size is {self.backbone.vocab_size} '
                '(and the MLM head must match it): set vocab_size to '
                f'{vocab_size} in the config or use the vocabulary the model '
                'was trained with.')

    # ---------------------------------------------------------------- parts
    def extract_feat(self,
                     inputs: Dict[str, torch.Tensor],
                     modalities: Sequence[str] = ('visual', 'text'),
                     text_queries: Optional[int] = None) -> VLFeatures:
        """Run the encoder on the modalities asked for.

        ``text_queries``: see :meth:`PVTVL.forward` (only the leading caption
        tokens of the last block are computed).
        """
        images = inputs.get('images') if 'visual' in modalities else None
        input_ids = inputs.get('input_ids') if 'text' in modalities else None
        attention_mask = inputs.get('attention_mask') \
            if input_ids is not None else None
        if text_queries is None:
            return self.backbone(images, input_ids, attention_mask)
        return self.backbone(
            images, input_ids, attention_mask, text_queries=text_queries)

    def _trim_padding(self,
                      inputs: Dict[str, torch.Tensor],
                      allow_sync: bool,
                      min_length: int = 1) -> Dict[str, torch.Tensor]:
        """Drop caption columns that are [PAD] in every caption (fast mode).

        With the key padding mask on, no real token attends to a [PAD] key,
        so cutting trailing all-[PAD] columns leaves every real token's
        features, and so every loss and score, unchanged. The kept length is
        ``batch['text_length']`` (read on the host by the data
        preprocessor) rounded up to a multiple of 8 so that few shapes
        occur; without it the mask is read from the device only when
        ``allow_sync`` (evaluation). MLM slots past the cut are unused ones
        (label -100) and move to position 0 ([CLS]).
        """
        attention_mask = inputs.get('attention_mask')
        if self.compute_mode != 'fast' or attention_mask is None or \
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
        keep = min(full, max(min_length, -(-length // 8) * 8))
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

    def _fast_pass_inputs(self, inputs: Dict[str, torch.Tensor],
                          heads: Sequence[str]) -> tuple:
        """Inputs and ``text_queries`` of a predict pass that computes only
        what ``heads`` read.

        When every head reads only the leading caption token(s) of T^4 (its
        ``text_queries``; the ITM head's [CLS]), the last block computes just
        those and all-[PAD] caption columns are cut
        (:meth:`_trim_padding`): the outputs do not change.
        """
        if self.compute_mode != 'fast' or not heads or 'input_ids' not in \
                inputs:
            return inputs, None
        queries = {
            getattr(self.heads[name], 'text_queries', None)
            for name in heads
        }
        if len(queries) != 1 or None in queries:
            return inputs, None
        text_queries = queries.pop()
        # At most one host read per evaluation batch (never in training).
        return self._trim_padding(inputs, True, text_queries), text_queries

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
        if self.compile_options is None:
            return self._forward(inputs, data_samples, mode)
        if self._compiled_forward is None or \
                self._compiled_forward[0] != id(self):
            self._compiled_forward = (id(self),
                                      torch.compile(self._forward,
                                                    **self.compile_options))
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

    def loss(self,
             inputs: Dict[str, torch.Tensor],
             data_samples: Optional[List] = None) -> Dict[str, torch.Tensor]:
        """Weighted losses of the training objectives (plus logged metrics)."""
        inputs = self._trim_padding(inputs, allow_sync=False)
        joint = self._joint_heads(self.train_objectives)
        head_feats = self._joint_feats(inputs, joint)
        # Unimodal passes (ITC) only when such a head is trained; on the
        # matched pairs only, which come first in a training batch.
        unimodal = self._unimodal_feat(inputs, self.train_objectives,
                                       inputs.get('num_matched'))
        losses: Dict[str, torch.Tensor] = {}
        for name in self.train_objectives:
            feats = head_feats[name] if name in joint else unimodal
            losses.update(self.heads[name].loss(feats, inputs))
        return losses

    def _joint_feats(self, inputs: Dict[str, torch.Tensor],
                     heads: Sequence[str]) -> Dict[str, VLFeatures]:
        """Joint-pass features for each training head.

        ``masked_image_pass='shared'``: one pass on the masked images for
        every head (the paper). ``'separate'``: heads that reconstruct the
        image (``uses_masked_images``) get a pass on the masked images of the
        rows they use; the other heads see the unmasked images, as in the
        authors' reference code (ITM / MLM on clean images).
        """
        if not heads:
            return {}
        masked = tuple(
            n for n in heads
            if getattr(self.heads[n], 'uses_masked_images', False))
        if self.masked_image_pass == 'shared' or not masked or \
                'target_images' not in inputs:
            feats = self.extract_feat(inputs, self._modalities(heads))
            return {name: feats for name in heads}
        result = {}
        clean = tuple(n for n in heads if n not in masked)
        if clean:
            feats = self.extract_feat(
                dict(inputs, images=inputs['target_images']),
                self._modalities(clean))
            result.update({name: feats for name in clean})
        total = inputs['images'].shape[0]
        rows = max(
            num_loss_rows(inputs, getattr(self.heads[n], 'pairs', 'all'),
                          total) for n in masked)
        subset = {
            key: inputs[key][:rows]
            for key in ('images', 'input_ids', 'attention_mask')
            if inputs.get(key) is not None
        }
        feats = self.extract_feat(subset, self._modalities(masked))
        result.update({name: feats for name in masked})
        return result

    def _joint_heads(self, head_names: Sequence[str]) -> tuple:
        """The heads that read the joint image + caption pass."""
        return tuple(
            name for name in head_names
            if not set(self.heads[name].requires) <= set(UNIMODAL_MODALITIES))

    def _unimodal_feat(self,
                       inputs: Dict[str, torch.Tensor],
                       head_names: Sequence[str],
                       num_rows: Optional[int] = None
                       ) -> Optional[UnimodalFeatures]:
        needed = set(self._modalities(head_names)) & set(UNIMODAL_MODALITIES)
        if not needed:
            return None
        return self.extract_unimodal_feat(inputs, tuple(needed), num_rows)

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

    def _modalities(self, head_names: Sequence[str]) -> tuple:
        needed = set()
        for name in head_names:
            needed.update(self.heads[name].requires)
        return tuple(sorted(needed))

    def predict_outputs(self,
                        inputs: Dict[str, torch.Tensor],
                        tasks: Optional[Sequence[str]] = None
                        ) -> Dict[str, torch.Tensor]:
        """Batched predictions of the heads in ``tasks`` as a dict."""
        tasks = tuple(self.heads) if self.compute_mode == 'baseline' else \
            self._check_names('tasks', tasks or self.predict_tasks)
        joint = self._joint_heads(tasks)
        pass_inputs, text_queries = self._fast_pass_inputs(inputs, joint)
        feats = self.extract_feat(pass_inputs, self._modalities(joint),
                                  text_queries) if joint else None
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
        """Predictions of the ``predict_tasks`` heads, one data sample each.

        Fields set: ``itm_score`` (matching probability), ``category_scores``
        / ``subcategory_scores`` (class probabilities), ``reconstruction``
        (normalised image), ``mlm_logits``; plus ``image_mask`` and
        ``target_images`` rows when the preprocessor masked the images.
        """
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
