"""Key mapping from the authors' reference MVLT checkpoints to mvlt models.

The reference implementation (GitHub GewelsJI/MVLT, ``libs/pvlt.py`` and
``libs/vl_heads.py``) saves ``torch.save({'model': state_dict, ...})`` with
the names listed in ``official_mvlt_tiny_state_dict.tsv``. The equivalent
mvlt model is ``configs/mvlt/reference_mvlt_tiny.py``: PVT-VL without a key
padding mask, the reference's partial decoder as MIR decoder, and the ITM,
MLM and category heads.

Facts the mapping relies on (read from the reference code):

* ``pos_embed4`` has one slot more than the 8 x 8 grid; the reference adds
  ``pos_embed4[:, 1:]`` to the visual tokens, so slot 0 (the class-token slot
  of PVT v1) is unused and dropped.
* ``itm_head`` / ``sup_cls_head`` / ``sub_cls_head`` compute
  ``linear(x) + linear_bias``: the extra bias is additive and folds into
  ``linear.bias``.
* ``mlm_head.mlm_decoder.weight`` is the word-embedding matrix (tied), as in
  mvlt's ``MLMHead``.
* The reference concatenates ``[visual; text]`` tokens and mvlt
  ``[text; visual]``; without a key padding mask attention does not depend
  on token order, so no weight changes are needed for it.
* ``text_embeddings.position_ids`` (and ``token_type_ids``) of older files
  are buffers that transformers now rebuilds; they are checked and dropped.
"""
import argparse
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from mvlt.utils.checkpoint import load_checkpoint_file
from ..backbones.pvt_weights import drop_class_token_slot

#: (reference key pattern, mvlt key template). ``{s}`` is the stage index
#: (the reference's 1-based ``k`` minus 1); other fields are named groups.
#: The first matching rule wins.
REFERENCE_KEY_RULES: Tuple[Tuple[str, str], ...] = (
    # PVT-VL encoder
    (r'^pos_embed(?P<k>\d)$', 'backbone.stages.{s}.pos_embed'),
    (r'^text_pos_embed(?P<k>\d)$', 'backbone.stages.{s}.text_pos_embed'),
    (r'^patch_embed(?P<k>\d)\.(?P<rest>(proj|norm)\.\w+)$',
     'backbone.stages.{s}.patch_embed.{rest}'),
    (r'^text_embed(?P<k>\d)\.0\.(?P<p>\w+)$',
     'backbone.stages.{s}.text_embed.proj.{p}'),
    (r'^text_embed(?P<k>\d)\.1\.(?P<p>\w+)$',
     'backbone.stages.{s}.text_embed.norm.{p}'),
    (r'^block(?P<k>\d)\.(?P<rest>\d+\..+)$',
     'backbone.stages.{s}.blocks.{rest}'),
    (r'^text_embeddings\.(?P<rest>(word_embeddings|position_embeddings|'
     r'token_type_embeddings|LayerNorm)\.\w+)$',
     'backbone.text_embeddings.{rest}'),
    # [CLS] / token projections of the heads
    (r'^(?P<h>mlm|itm)_head_embed\.0\.(?P<p>\w+)$',
     'heads.{h}.neck.layer.proj.{p}'),
    (r'^(?P<h>mlm|itm)_head_embed\.1\.(?P<p>\w+)$',
     'heads.{h}.neck.layer.norm.{p}'),
    (r'^sup_cls_head_embed\.0\.(?P<p>\w+)$',
     'heads.category.category_neck.layer.proj.{p}'),
    (r'^sup_cls_head_embed\.1\.(?P<p>\w+)$',
     'heads.category.category_neck.layer.norm.{p}'),
    (r'^sub_cls_head_embed\.0\.(?P<p>\w+)$',
     'heads.category.subcategory_neck.layer.proj.{p}'),
    (r'^sub_cls_head_embed\.1\.(?P<p>\w+)$',
     'heads.category.subcategory_neck.layer.norm.{p}'),
    # MLM: BERT prediction head layout
    (r'^mlm_head\.bias$', 'heads.mlm.bias'),
    (r'^mlm_head\.transform\.dense\.(?P<p>\w+)$', 'heads.mlm.transform.0.{p}'),
    (r'^mlm_head\.transform\.LayerNorm\.(?P<p>\w+)$',
     'heads.mlm.transform.2.{p}'),
    (r'^mlm_head\.mlm_decoder\.weight$', 'heads.mlm.decoder.weight'),
    # classifiers (linear_bias is folded in afterwards)
    (r'^itm_head\.linear\.(?P<p>\w+)$', 'heads.itm.fc.{p}'),
    (r'^sup_cls_head\.linear\.(?P<p>\w+)$', 'heads.category.category_fc.{p}'),
    (r'^sub_cls_head\.linear\.(?P<p>\w+)$',
     'heads.category.subcategory_fc.{p}'),
    # partial decoder: Sequential(conv, BN) -> ConvModule(conv, bn)
    (r'^t2i_head\.score\.0\.(?P<p>\w+)$', 'heads.mir.decoder.score.{p}'),
    (r'^t2i_head\.(?P<m>\w+)\.0\.(?P<p>\w+)$',
     'heads.mir.decoder.{m}.conv.{p}'),
    (r'^t2i_head\.(?P<m>\w+)\.1\.(?P<p>\w+)$', 'heads.mir.decoder.{m}.bn.{p}'),
)

#: Additive extra biases: reference key -> mvlt bias they fold into.
FOLDED_BIASES: Dict[str, str] = {
    'itm_head.linear_bias': 'heads.itm.fc.bias',
    'sup_cls_head.linear_bias': 'heads.category.category_fc.bias',
    'sub_cls_head.linear_bias': 'heads.category.subcategory_fc.bias',
}

#: Buffers that current transformers rebuilds (not in state dicts).
DROPPED_BUFFERS = ('text_embeddings.position_ids',
                   'text_embeddings.token_type_ids')

_COMPILED = tuple((re.compile(p), t) for p, t in REFERENCE_KEY_RULES)


@dataclass
class ReferenceConversion:
    """Result of :func:`convert_reference_state_dict`.

    Attributes:
        state_dict: mvlt keys -> tensors.
        sources: mvlt key -> the reference keys it was made from.
        dropped: Reference keys deliberately left out (rebuilt buffers).
        unused: Reference keys no rule knows (a different model variant).
    """
    state_dict: Dict[str, torch.Tensor] = field(default_factory=dict)
    sources: Dict[str, List[str]] = field(default_factory=dict)
    dropped: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)


def reference_key_to_mvlt(key: str) -> Optional[str]:
    """The mvlt key of one reference key, or None when no rule applies."""
    for pattern, template in _COMPILED:
        match = pattern.match(key)
        if match:
            groups = match.groupdict()
            if 'k' in groups:
                groups['s'] = int(groups.pop('k')) - 1
            return template.format(**groups)
    return None


def _check_position_ids(key: str, value: torch.Tensor) -> None:
    if key.endswith('position_ids'):
        expected = torch.arange(value.shape[-1]).expand_as(value)
        if not torch.equal(value.long().cpu(), expected):
            raise ValueError(
                f'{key} is not 0..{value.shape[-1] - 1}; this checkpoint '
                'does not use absolute BERT positions and cannot be '
                'converted.')


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor]
                                 ) -> ReferenceConversion:
    """Rename and fold a reference state dict into mvlt's layout.

    Args:
        state_dict: The ``model`` entry of a reference checkpoint (a
            ``module.`` prefix of DDP is removed).

    Returns:
        ReferenceConversion: the converted tensors, where each came from,
        and the reference keys that were dropped or not understood.

    Raises:
        ValueError: The tied MLM decoder differs from the word embeddings,
            a folded bias has no matching classifier, or the position ids
            are not the identity.
    """
    result = ReferenceConversion()
    folded: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        if key in DROPPED_BUFFERS:
            _check_position_ids(key, value)
            result.dropped.append(key)
            continue
        if key in FOLDED_BIASES:
            folded[key] = value
            continue
        new_key = reference_key_to_mvlt(key)
        if new_key is None:
            result.unused.append(key)
            continue
        if new_key.endswith('.pos_embed'):
            value = drop_class_token_slot(value)
        if new_key in result.state_dict:
            raise ValueError(f'Reference keys {result.sources[new_key]} and '
                             f'{key} both map to {new_key}.')
        result.state_dict[new_key] = value
        result.sources[new_key] = [key]

    for key, value in folded.items():
        target = FOLDED_BIASES[key]
        weight = target[:-len('bias')] + 'weight'
        if weight not in result.state_dict:
            raise ValueError(f'{key} has no classifier weight to fold into '
                             f'(expected the reference key for {weight}).')
        bias = result.state_dict.get(target)
        result.state_dict[target] = value.clone() if bias is None else \
            bias + value
        result.sources.setdefault(target, []).append(key)

    decoder = result.state_dict.get('heads.mlm.decoder.weight')
    words = result.state_dict.get(
        'backbone.text_embeddings.word_embeddings.weight')
    if decoder is not None and words is not None and not torch.equal(
            decoder, words):
        raise ValueError(
            'mlm_head.mlm_decoder.weight differs from '
            'text_embeddings.word_embeddings.weight; the reference ties them '
            "and so does mvlt's MLMHead, so this checkpoint was not saved by "
            'the reference model.')
    return result


@dataclass
class ModelMismatch:
    """Differences between converted tensors and a model's state dict."""
    missing: List[str]
    unexpected: List[str]
    wrong_shape: List[Tuple[str, tuple, tuple]]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong_shape)

    def describe(self) -> str:
        """A multi-line summary for an error message."""
        lines = []
        if self.missing:
            lines.append(f'model keys without a converted tensor '
                         f'({len(self.missing)}): {self.missing[:20]}')
        if self.unexpected:
            lines.append(f'converted keys the model does not have '
                         f'({len(self.unexpected)}): {self.unexpected[:20]}')
        for key, got, want in self.wrong_shape[:20]:
            lines.append(f'{key}: converted {got}, model {want}')
        return '\n'.join(lines)


def compare_with_model(state_dict: Mapping[str, torch.Tensor],
                       model: nn.Module) -> ModelMismatch:
    """Compare converted tensors with ``model.state_dict()`` (keys, shapes)."""
    own = model.state_dict()
    return ModelMismatch(
        missing=sorted(k for k in own if k not in state_dict),
        unexpected=sorted(k for k in state_dict if k not in own),
        wrong_shape=[(k, tuple(v.shape), tuple(own[k].shape))
                     for k, v in sorted(state_dict.items())
                     if k in own and tuple(v.shape) != tuple(own[k].shape)])


def load_reference_checkpoint(
    path: str,
    extra_safe_globals: Optional[List[Callable]] = None
) -> Dict[str, torch.Tensor]:
    """Load a reference checkpoint with weights-only unpickling.

    Besides tensors the reference saves its command-line ``args`` (an
    ``argparse.Namespace``), which is allow-listed; anything else that is not
    plain data is refused.

    Returns:
        dict: The model state dict (the ``model`` entry when present).
    """
    allowed = [argparse.Namespace] + list(extra_safe_globals or [])
    try:
        # The one checkpoint reader (weights-only, MMEngine's training state
        # allow-listed), with the reference's args allowed too.
        checkpoint = load_checkpoint_file(path, 'cpu', allowed)
    except FileNotFoundError:
        raise FileNotFoundError(f'Reference checkpoint {path} does not '
                                'exist.') from None
    except RuntimeError as err:
        raise RuntimeError(
            f'{err} If it holds objects besides tensors and args, re-save '
            'only the weights where the reference code is installed: '
            "torch.save({'model': torch.load(path)['model']}, "
            'new_path).') from None
    if isinstance(checkpoint, Mapping) and 'model' in checkpoint:
        checkpoint = checkpoint['model']
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a '
                         'state dict or {"model": state_dict}.')
    return dict(checkpoint)
