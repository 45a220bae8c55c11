"""Zero-shot category prediction by ITC similarity to prompt captions (as
CLIP / FashionCLIP): no weights of its own, the ITC head's.

Each class name is put into one or more caption templates ("a photo of a
{}"); the prompts' ITC text embeddings, averaged over the templates and
L2-normalised again (CLIP's prompt ensembling), are the class embeddings;
an image's class probabilities are the softmax of its ITC similarities to
them over the ITC head's learned temperature.
"""
import weakref
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from mvlt.registry import MODELS
from ..backbones import UnimodalFeatures
from .base_head import BaseVLHead

Templates = Union[str, Sequence[str]]

Labels = Union[Sequence[str], Mapping[str, Sequence[str]]]


def prompt_captions(labels: Labels,
                    templates: Templates = '{}') -> List[List[str]]:
    """The prompts of each class: every template with the label in it, or,
    when ``labels`` maps each class to its own prompts (captions that name
    it in the data's own words, e.g. ``{'trousers': ['a pair of long
    trousers.', ...]}``), those.

    Raises:
        ValueError: No labels, a class without prompts, or a template
            without ``{}``.
    """
    if not labels:
        raise ValueError('Zero-shot prediction needs labels.')
    if isinstance(labels, Mapping):
        prompts = [list(p) for p in labels.values()]
        if not all(prompts) or any(
                isinstance(p, str) for p in labels.values()):
            raise ValueError('Each class needs a list of prompt captions, '
                             f'got {dict(labels)!r}.')
        return prompts
    templates = [templates] if isinstance(templates, str) else list(templates)
    if not templates:
        raise ValueError('Zero-shot prediction needs at least one template.')
    for template in templates:
        if '{}' not in template:
            raise ValueError(f'Template {template!r} has no {{}} for the '
                             'label, e.g. "a photo of a {}".')
    return [[t.format(label) for t in templates] for label in labels]


@torch.no_grad()
def class_embeddings(model,
                     labels: Labels,
                     templates: Templates = '{}',
                     batch_size: int = 64) -> torch.Tensor:
    """L2-normalised class embeddings (C, D): each class's prompts
    (:func:`prompt_captions`) embedded by the model's ITC text tower
    (:meth:`MVLT.embed_texts`), averaged and normalised again (CLIP's
    prompt ensembling).

    Args:
        model: An MVLT with an ITC head.
        labels: Class words (``'shirt'``), or class -> its own prompts.
        templates: Caption template(s) with ``{}`` for the label.
        batch_size: Prompts per forward pass.
    """
    prompts = prompt_captions(labels, templates)
    ids, mask = model.data_preprocessor.tokenize(
        [p for group in prompts for p in group])
    device = model.data_preprocessor.device
    embeds = model.embed_texts(
        ids.to(device), mask.to(device), batch_size=batch_size)
    means = [
        chunk.mean(dim=0)
        for chunk in embeds.split([len(group) for group in prompts])
    ]
    return F.normalize(torch.stack(means), dim=-1)


def zero_shot_probs(image_embeds: torch.Tensor, class_embeds: torch.Tensor,
                    temperature: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, C): softmax of the cosine similarities of
    L2-normalised image (N, D) and class (C, D) embeddings over the ITC
    temperature."""
    logits = image_embeds.float() @ class_embeds.float().t() / temperature
    return logits.softmax(dim=-1)


@MODELS.register_module()
class ZeroShotCategoryHead(BaseVLHead):
    """Category / sub-category scores of images from prompt captions.

    Predicts ``category_scores`` / ``subcategory_scores`` (the fields of
    :class:`CategoryHead`, read by ``RecognitionMetric``) for the label sets
    given, from the image-only pass and the ITC head named ``itc``; the
    class embeddings are computed on the first batch after the model is put
    in eval mode (and again after any training).

    Args:
        classes (dict): Prediction field prefix -> class words in label-id
            order, e.g. ``dict(category=['shirt', 'dress'])``, or -> a dict
            of class -> its own prompt captions (label-id order).
        templates (str | list[str]): Caption template(s) with ``{}``.
        itc (str): Name of the ITC head in ``model.heads``.
    """

    requires = ('visual_only', )
    #: Heads whose trained weights this head reads (the test loop checks
    #: the checkpoint for them instead of this head, which has none).
    reads_heads = ('itc', )

    def __init__(self,
                 classes: Dict[str, Sequence[str]],
                 templates: Templates = '{}',
                 itc: str = 'itc',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not classes:
            raise ValueError('ZeroShotCategoryHead needs classes, e.g. '
                             "dict(category=['shirt', 'dress']).")
        self.classes = {
            k: dict(v) if isinstance(v, Mapping) else list(v)
            for k, v in classes.items()
        }
        self.templates = templates
        prompt_captions(next(iter(self.classes.values())), templates)
        self.itc = itc
        self.reads_heads = (itc, )
        self._model = None
        self._class_embeds: Dict[str, torch.Tensor] = {}

    def bind(self, model) -> None:
        """Called by the model that owns this head (a weak reference: the
        head is the model's sub-module)."""
        if self.itc not in model.heads:
            raise KeyError(f'ZeroShotCategoryHead needs the ITC head '
                           f'model.heads.{self.itc}; the model builds only '
                           f'{sorted(model.heads)}.')
        self._model = weakref.ref(model)

    def train(self, mode: bool = True):
        # New weights make new class embeddings.
        self._class_embeds = {}
        return super().train(mode)

    def predict(self, feats: UnimodalFeatures,
                batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``<field>_scores`` (B, C) for every field of ``classes``."""
        model = self._model() if self._model is not None else None
        if model is None:
            raise RuntimeError('ZeroShotCategoryHead is not bound to a model;'
                               ' build it inside an MVLT (model.heads).')
        itc = model.heads[self.itc]
        images = itc.embed_images(feats.visual)
        outputs = {}
        for field, labels in self.classes.items():
            if field not in self._class_embeds:
                self._class_embeds[field] = class_embeddings(
                    model, labels, self.templates)
            outputs[f'{field}_scores'] = zero_shot_probs(
                images, self._class_embeds[field], itc.temperature)
        return outputs
