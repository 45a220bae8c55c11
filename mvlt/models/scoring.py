"""The scoring API of MVLT: ITM pair scores, ITC embeddings and TGIR
(composed) query embeddings."""
from typing import Optional

import torch

from .utils import run_in_batches


class RetrievalScoringMixin:
    """Retrieval scoring on top of ``predict_outputs`` (mixed into MVLT).

    The one implementation of ITM pair scoring and ITC embedding used by the
    retrieval test loop, :class:`mvlt.apis.MVLTInferencer`, the catalogue
    search and the benchmark. Inputs are model inputs as the data
    preprocessor makes them (normalised images, token ids); batching pads
    the last batch so that results do not depend on neighbouring rows.
    """

    def _require_head(self, name: str, what: str) -> None:
        if name not in self.heads:
            raise KeyError(f'MVLT.{what} needs the {name!r} head, but '
                           f'model.heads builds only {sorted(self.heads)}.')

    def _head_output(self, head: str, what: str, key: str,
                     batch_size: Optional[int],
                     **inputs: torch.Tensor) -> torch.Tensor:
        """``predict_outputs(inputs, (head, ))[key]`` in padded batches of
        ``batch_size`` rows, as float32 (KeyError without the head)."""
        self._require_head(head, what)
        names = tuple(inputs)

        def run(*tensors: torch.Tensor) -> torch.Tensor:
            return self.predict_outputs(dict(zip(names, tensors)),
                                        (head, ))[key]

        return run_in_batches(run, tuple(inputs.values()),
                              batch_size).float()

    @torch.no_grad()
    def score_pairs(self,
                    images: torch.Tensor,
                    input_ids: torch.Tensor,
                    attention_mask: torch.Tensor,
                    batch_size: Optional[int] = None) -> torch.Tensor:
        """ITM matching probability of ``images[i]`` with caption ``i``.

        The one implementation of pair scoring: the retrieval loop, the
        inferencer, the search index and the benchmark all call it.

        Args:
            images (Tensor): (N, 3, H, W) normalised images.
            input_ids, attention_mask (Tensor): (N, L) captions.
            batch_size (int, optional): Pairs per forward pass; the last
                batch is padded to this size (with copies of its first pair),
                so that on CPU a pair's score is bitwise the same whatever
                pairs surround it. None: one pass over all N.

        Returns:
            Tensor: (N,) float32 probabilities in [0, 1].

        Raises:
            KeyError: The model has no ITM head.
        """
        return self._head_output(
            'itm',
            'score_pairs',
            'itm_score',
            batch_size,
            images=images,
            input_ids=input_ids,
            attention_mask=attention_mask)

    @torch.no_grad()
    def embed_images(self,
                     images: torch.Tensor,
                     batch_size: Optional[int] = None) -> torch.Tensor:
        """L2-normalised ITC embeddings (N, D) of image-only passes.

        Args:
            images (Tensor): (N, 3, H, W) normalised images.
            batch_size (int, optional): As in :meth:`score_pairs`.

        Raises:
            KeyError: The model has no ITC head.
        """
        return self._head_output(
            'itc',
            'embed_images',
            'itc_image_embeds',
            batch_size,
            images=images)

    @torch.no_grad()
    def embed_composed(self,
                       images: torch.Tensor,
                       input_ids: torch.Tensor,
                       attention_mask: torch.Tensor,
                       batch_size: Optional[int] = None) -> torch.Tensor:
        """L2-normalised TGIR query embeddings (N, D) of joint passes of
        ``images[i]`` (reference) with modification text ``i``.

        They live in the space of :meth:`embed_images` (the gallery):
        similarity is their dot product.

        Args:
            images (Tensor): (N, 3, H, W) normalised reference images.
            input_ids, attention_mask (Tensor): (N, L) modification texts.
            batch_size (int, optional): As in :meth:`score_pairs`.

        Raises:
            KeyError: The model has no TGIR head.
        """
        return self._head_output(
            'tgir',
            'embed_composed',
            'tgir_query_embeds',
            batch_size,
            images=images,
            input_ids=input_ids,
            attention_mask=attention_mask)

    @torch.no_grad()
    def embed_texts(self,
                    input_ids: torch.Tensor,
                    attention_mask: torch.Tensor,
                    batch_size: Optional[int] = None) -> torch.Tensor:
        """L2-normalised ITC embeddings (N, D) of caption-only passes.

        Args:
            input_ids, attention_mask (Tensor): (N, L) captions.
            batch_size (int, optional): As in :meth:`score_pairs`.

        Raises:
            KeyError: The model has no ITC head.
        """
        return self._head_output(
            'itc',
            'embed_texts',
            'itc_text_embeds',
            batch_size,
            input_ids=input_ids,
            attention_mask=attention_mask)
