"""The training losses of MVLT: unimodal passes, ITM pairs, joint passes."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import all_reduce

from .backbones import UnimodalFeatures, VLFeatures
from .negative_samplers import NegativeCandidates
from .utils import ITMPairs, candidate_pool, num_loss_rows, paired_batch


class TrainingLossMixin:
    """``loss`` of :class:`~mvlt.models.MVLT` (mixed into it).

    Reads the model's ``heads``, ``train_objectives``, ``itm_sampler``,
    ``masked_image_pass``, ``data_preprocessor`` and its encoder helpers
    (``extract_feat``, ``_unimodal_feat``, ``_trim_padding``,
    ``_joint_heads``, ``_modalities``).
    """

    def loss(self,
             inputs: Dict[str, torch.Tensor],
             data_samples: Optional[List] = None) -> Dict[str, torch.Tensor]:
        """Weighted losses of the training objectives (plus logged metrics).

        The B samples first go through the unimodal passes (when an ITC head
        is trained: its contrastive loss, and the similarities an ITC-hard
        sampler draws from), then the negative sampler pairs images with
        captions (:meth:`_itm_pairs`) and the joint heads read the pairs.
        """
        inputs = self._gallery_embeds(inputs)
        pool, offset = self._candidates(inputs)
        if pool is not None:
            rows = inputs['input_ids'].shape[0]
            inputs = dict(
                inputs, caption_id=pool['caption_id'][offset:offset + rows])
        unimodal = self._unimodal_feat(
            self._trim_padding(inputs, allow_sync=False),
            self.train_objectives)
        paired = self._trim_padding(
            self._itm_pairs(inputs, unimodal, pool, offset), allow_sync=False)
        joint = self._joint_heads(self.train_objectives)
        head_feats = self._joint_feats(paired, joint)
        losses: Dict[str, torch.Tensor] = {}
        for name in self.train_objectives:
            if name in joint:
                losses.update(self.heads[name].loss(head_feats[name], paired))
            else:
                losses.update(self.heads[name].loss(unimodal, inputs))
        return losses

    def _gallery_embeds(self,
                        inputs: Dict[str,
                                     torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Add ``gallery_embeds`` (B, D), the gallery head's image
        embeddings of ``gallery_images`` (with gradient), when a trained
        head ranks them (TGIR: the target images of the pairs)."""
        names = [
            n for n in self.train_objectives
            if 'gallery_embeds' in self.heads[n].batch_needs
        ]
        if not names:
            return inputs
        if inputs.get('gallery_images') is None:
            raise KeyError(
                f'MVLT: head {names[0]!r} trains on target images, but the '
                'batch has no gallery_images; pack samples with '
                'PackTGIRInputs after LoadTargetImage.')
        gallery = self.heads[self.heads[names[0]].gallery_head]
        visual = self.backbone(inputs['gallery_images'], None, None)
        return dict(inputs, gallery_embeds=gallery.embed_images(visual))

    def _candidates(self, inputs: Dict[str, torch.Tensor]) -> tuple:
        """The captions the sampler may pair images with (every rank's when
        the ITC similarities are gathered: an ITC head or ITC-hard
        sampling), or (None, 0) when no trained head needs pairs."""
        sampler = self.itm_sampler
        if sampler is None or not any('itm_pairs' in self.heads[n].batch_needs
                                      for n in self.train_objectives):
            return None, 0
        across = sampler.needs_similarity or 'itc' in self.train_objectives
        return candidate_pool(inputs, across)

    def _itm_pairs(self, inputs: Dict[str, torch.Tensor],
                   unimodal: Optional[UnimodalFeatures],
                   pool: Optional[Dict[str, torch.Tensor]],
                   offset: int) -> Dict[str, torch.Tensor]:
        """The batch as image-caption pairs of the negative sampler (or as
        the B matched pairs, when no trained head needs negatives)."""
        rows = inputs['images'].shape[0]
        if pool is None:
            index = torch.arange(rows, device=inputs['images'].device)
            return paired_batch(
                inputs, ITMPairs(index, index, torch.ones_like(index), rows),
                None)
        similarity = None
        if self.itm_sampler.needs_similarity:
            with torch.no_grad():
                similarity = self.heads['itc'].logits(unimodal)[0]
        candidates = NegativeCandidates(
            product=pool['product_index'],
            caption=pool['caption_id'],
            group=pool.get(getattr(self.itm_sampler, 'group', None)),
            similarity=similarity,
            offset=offset)
        pairs = self.itm_sampler(
            rows, candidates,
            self.data_preprocessor.generator(inputs['images'].device))
        paired = paired_batch(inputs, pairs, pool)
        if len(pool['product_index']) > rows and 'text_length' in inputs:
            # Captions of other ranks may be longer than this rank's.
            length = torch.tensor(
                inputs['text_length'], device=inputs['images'].device)
            all_reduce(length, op='max')
            paired['text_length'] = int(length)
        return paired

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
