"""Zero-shot classification for :class:`mvlt.apis.MVLTInferencer`."""
from typing import Dict, List, Sequence, Union

import numpy as np
import torch

from mvlt.models.heads import class_embeddings, zero_shot_probs


class ZeroShotMixin:
    """``classify``: labels by ITC similarity to prompt captions, with the
    functions of :class:`mvlt.models.heads.ZeroShotCategoryHead`. Mixed
    into :class:`MVLTInferencer` (its ``model``, ``load_images``,
    ``_embed_pixels``, ``_require``, ``batch_size`` and ``device``).
    """

    @torch.no_grad()
    def classify(self,
                 images: Sequence[Union[str, np.ndarray]],
                 labels: Union[Sequence[str], Dict[str, Sequence[str]]],
                 template: Union[str, Sequence[str]] = '{}',
                 topk: int = 1) -> List[dict]:
        """Zero-shot classification by ITC similarity to prompt captions
        (as CLIP / FashionCLIP): each label in ``template`` (several
        templates: their embeddings are averaged, CLIP's prompt
        ensembling), the image's class probabilities from
        :func:`mvlt.models.heads.zero_shot_probs` (the zero-shot head's).

        Args:
            images: Files or RGB uint8 arrays.
            labels: Class words, e.g. ``['shirt', 'dress', 'trousers']``,
                or class -> its own prompt captions (then no template).
            template: Caption template(s) with ``{}`` for the label, e.g.
                ``'a {} in cotton.'``.
            topk: Labels listed per image in ``topk``.

        Returns:
            list[dict]: Per image (as mmpretrain's ``pred_*`` fields):
            ``pred_label`` (index), ``pred_class`` (word), ``pred_score``
            and ``pred_scores`` (C,) probabilities, ``topk`` [(word,
            probability)] best first.
        """
        self._require('itc')
        class_embeds = class_embeddings(
            self.model, labels, template, batch_size=self.batch_size)
        image_embeds = torch.from_numpy(
            self._embed_pixels(self.load_images(images))).to(self.device)
        probs = zero_shot_probs(image_embeds, class_embeds,
                                self.model.heads['itc'].temperature)
        probs = probs.cpu().numpy()
        labels = list(labels)
        out = []
        for row in probs:
            order = np.argsort(-row, kind='stable')[:topk]
            out.append(
                dict(
                    pred_label=int(order[0]),
                    pred_class=labels[order[0]],
                    pred_score=float(row[order[0]]),
                    pred_scores=row,
                    topk=[(labels[i], float(row[i])) for i in order]))
        return out
