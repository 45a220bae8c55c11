"""MVLT: the masked vision-language transformer as an MMEngine model."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mvlt.registry import MODELS
from .backbones import VLFeatures

#: Head name -> what ``predict`` puts in the data samples.
PREDICT_FIELDS = {
    'itm': ('itm_score', ),
    'category': ('category_scores', 'subcategory_scores'),
    'mir': ('reconstruction', ),
    'mlm': ('mlm_logits', ),
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
            ``category`` (and plug-ins). A None entry is not built; this is
            how an objective is switched off (paper table 3d). In the backbone
            and head configs ``vocab_size=None`` takes the size of the
            preprocessor's tokenizer.
        train_objectives (Sequence[str], optional): Heads whose loss counts in
            training; default: every built head.
        predict_tasks (Sequence[str], optional): Heads run by ``predict``;
            default: ``('itm',)`` when an ITM head is built, else every head.
        compute_mode (str): ``'fast'`` runs only what a task needs;
            ``'baseline'`` behaves like a straightforward implementation (every
            built head in predict mode; attention and MLM settings come from
            the backbone / head configs). Used by the speed benchmark.
        data_preprocessor (dict): ``MVLTDataPreprocessor`` config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 heads: Dict[str, Optional[dict]],
                 train_objectives: Optional[Sequence[str]] = None,
                 predict_tasks: Optional[Sequence[str]] = None,
                 compute_mode: str = 'fast',
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
        self.compute_mode = compute_mode
        vocab_size = getattr(self.data_preprocessor, 'vocab_size', None)
        self.backbone = MODELS.build(
            self._with_vocab_size(backbone, vocab_size))
        self._check_vocabulary()
        self.heads = nn.ModuleDict({
            name: MODELS.build(self._with_vocab_size(cfg, vocab_size))
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
                     modalities: Sequence[str] = ('visual',
                                                  'text')) -> VLFeatures:
        """Run the encoder on the modalities asked for."""
        images = inputs.get('images') if 'visual' in modalities else None
        input_ids = inputs.get('input_ids') if 'text' in modalities else None
        attention_mask = inputs.get('attention_mask') \
            if input_ids is not None else None
        return self.backbone(images, input_ids, attention_mask)

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
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'MVLT: invalid mode {mode!r}; use loss, '
                           'predict or tensor.')

    def loss(self, inputs: Dict[str, torch.Tensor],
             data_samples: Optional[List] = None) -> Dict[str, torch.Tensor]:
        """Weighted losses of the training objectives (plus logged metrics)."""
        feats = self.extract_feat(inputs,
                                  self._modalities(self.train_objectives))
        losses: Dict[str, torch.Tensor] = {}
        for name in self.train_objectives:
            losses.update(self.heads[name].loss(feats, inputs))
        return losses

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
        feats = self.extract_feat(inputs, self._modalities(tasks))
        outputs: Dict[str, torch.Tensor] = {}
        for name in tasks:
            outputs.update(self.heads[name].predict(feats, inputs))
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

