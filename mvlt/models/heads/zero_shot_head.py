"""Zero-shot category prediction by ITC similarity to prompt captions (as
CLIP / FashionCLIP): no weights of its own, the ITC head's.

Each class name is put into one or more caption templates ("a photo of a
{}"); the prompts' ITC text embeddings, averaged over the templates and
L2-normalised again (CLIP's prompt ensembling), are the class embeddings;
an image's class probabilities are the softmax of its ITC similarities to
them over the ITC head's learned temperature.
"""
import weakref
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from mvlt.registry import MODELS
from ..backbones import UnimodalFeatures
from .base_head import BaseVLHead

Templates = Union[str, Sequence[str]]


def prompt_captions(labels: Sequence[str], templates: Templates) -> List[str]:
    """The prompt of every (label, template), label-major: C x T captions.

    Raises:
        ValueError: No labels, or a template without ``{}``.
    """
    templates = [templates] if isinstance(templates, str) else list(templates)
    if not labels or not templates:
        raise ValueError('Zero-shot prediction needs labels and at least one '
                         'template.')
    for template in templates:
        if '{}' not in template:
            raise ValueError(f'Template {template!r} has no {{}} for the '
                             'label, e.g. "a photo of a {}".')
    return [t.format(label) for label in labels for t in templates]


@torch.no_grad()
def class_embeddings(model,
                     labels: Sequence[str],
                     templates: Templates,
                     batch_size: int = 64) -> torch.Tensor:
    """L2-normalised class embeddings (C, D): each label's prompts embedded
    by the model's ITC text tower (:meth:`MVLT.embed_texts`), averaged over
    the templates and normalised again.

    Args:
        model: An MVLT with an ITC head.
        labels: Class names as words (``'shirt'``).
        templates: Caption template(s) with ``{}`` for the label.
        batch_size: Prompts per forward pass.
    """
    captions = prompt_captions(labels, templates)
    ids, mask = model.data_preprocessor.tokenize(captions)
    device = model.data_preprocessor.device
    embeds = model.embed_texts(
        ids.to(device), mask.to(device), batch_size=batch_size)
    embeds = embeds.view(len(labels), -1, embeds.shape[-1]).mean(dim=1)
    return F.normalize(embeds, dim=-1)


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
            order, e.g. ``dict(category=['shirt', 'dress'])``.
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
        self.classes = {k: list(v) for k, v in classes.items()}
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
