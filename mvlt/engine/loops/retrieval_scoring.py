"""Data-set rows in, model scores out: the retrieval loop's link between a
test data set and the model's scoring API.

Work is organised by image: a list of *groups* ``(image_row, caption_rows)``
is scored by streaming the images in order through a DataLoader (decoded
and resized once, kept until their last pair is scored) and the captions
from a table tokenised once. Pairs go to :meth:`MVLT.score_pairs` in
batches of exactly ``pair_batch_size`` (it pads the last one), so a pair
scores the same in every protocol, mode and number of processes.
"""
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

Group = Tuple[int, np.ndarray]


class RetrievalScorer:
    """Scores (caption row, image row) pairs and embeds rows of a data set.

    Images are read by the data set's pipeline and prepared (cropped,
    resized) by the model's data preprocessor, captions tokenised by it, as
    in training and in :class:`mvlt.apis.MVLTInferencer`.

    Args:
        model: The (unwrapped) MVLT model, in eval mode.
        dataset: The test data set; its pipeline loads and packs images.
        captions (Sequence[str]): Caption of every row of the data set.
        pair_batch_size (int): Pairs per ITM forward pass.
        embed_batch_size (int): Items per unimodal (ITC) forward pass.
        image_batch_size (int): Images per DataLoader batch.
        num_workers (int): DataLoader workers that decode the images.
        progress (callable, optional): Called with the number of pairs or
            items just finished.
    """

    def __init__(self,
                 model: torch.nn.Module,
                 dataset,
                 captions: Sequence[str],
                 pair_batch_size: int = 256,
                 embed_batch_size: int = 64,
                 image_batch_size: int = 32,
                 num_workers: int = 0,
                 progress: Optional[Callable[[int], None]] = None) -> None:
        if pair_batch_size < 1 or embed_batch_size < 1:
            raise ValueError('pair_batch_size and embed_batch_size must be '
                             'positive.')
        self.model = model
        self.dataset = dataset
        self.captions = captions
        self.pair_batch_size = pair_batch_size
        self.embed_batch_size = embed_batch_size
        self.image_batch_size = image_batch_size
        self.num_workers = num_workers
        self.progress = progress or (lambda n: None)

    @property
    def device(self) -> torch.device:
        return self.model.data_preprocessor.device

    # ------------------------------------------------------------- inputs
    def tokens(self, rows: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` (N, L) of the rows' captions
        on the model's device (each distinct caption tokenised once)."""
        ids, mask = self.model.data_preprocessor.tokenize(
            [self.captions[int(r)] for r in rows])
        return ids.to(self.device), mask.to(self.device)

    def iter_images(self, rows: Sequence[int]) -> Iterator[torch.Tensor]:
        """uint8 (3, H, W) image of each row as the model sees it, in order:
        read by the data set's pipeline in ``num_workers`` processes, cropped
        and resized by the model's data preprocessor."""
        if len(rows) == 0:
            return
        loader = DataLoader(
            self.dataset,
            batch_size=self.image_batch_size,
            sampler=[int(r) for r in rows],
            num_workers=self.num_workers,
            collate_fn=pseudo_collate)
        for batch in loader:
            inputs = batch['inputs']
            images = inputs['images'] if isinstance(
                inputs, dict) else [item['images'] for item in inputs]
            yield from self.model.data_preprocessor.prepare_images(images)

    def _normalise(self, images: List[torch.Tensor]) -> torch.Tensor:
        return self.model.data_preprocessor.normalize(torch.stack(images))

    # ---------------------------------------------------------------- ITM
    def _itm(self, images: List[torch.Tensor],
             caption_rows: List[int]) -> np.ndarray:
        input_ids, attention_mask = self.tokens(caption_rows)
        scores = self.model.score_pairs(
            self._normalise(images),
            input_ids,
            attention_mask,
            batch_size=self.pair_batch_size)
        self.progress(len(images))
        return scores.cpu().numpy()

    def score_groups(self, groups: Sequence[Group]) -> List[np.ndarray]:
        """ITM matching probability of every pair of every group.

        Args:
            groups: ``(image_row, caption_rows)`` in the order the images
                are read; consecutive groups may share an image row.

        Returns:
            list[np.ndarray]: float32 scores aligned with each group's
            caption rows.
        """
        results = [np.empty(len(c), np.float32) for _, c in groups]
        images = self.iter_images([row for row, _ in groups])
        pending: List[Tuple[int, int]] = []  # (group, position)
        cache: Dict[int, torch.Tensor] = {}

        def flush() -> None:
            scores = self._itm([cache[g] for g, _ in pending],
                               [int(groups[g][1][p]) for g, p in pending])
            for (g, p), score in zip(pending, scores):
                results[g][p] = score
            pending.clear()

        for index, (_, caption_rows) in enumerate(groups):
            cache[index] = next(images)
            for position in range(len(caption_rows)):
                pending.append((index, position))
                if len(pending) == self.pair_batch_size:
                    flush()
                    # Every earlier group is done: its image can go.
                    for done in [g for g in cache if g < index]:
                        del cache[done]
        if pending:
            flush()
        return results

    # ---------------------------------------------------------------- ITC
    def embed_images(self, rows: Sequence[int]) -> np.ndarray:
        """L2-normalised ITC image embeddings (N, D) of the rows."""
        chunks, batch = [], []
        for image in self.iter_images(rows):
            batch.append(image)
            if len(batch) == self.embed_batch_size:
                chunks.append(self._embed_images(batch))
                batch = []
        if batch:
            chunks.append(self._embed_images(batch))
        return np.concatenate(chunks) if chunks else np.zeros(
            (0, 0), np.float32)

    def _embed_images(self, images: List[torch.Tensor]) -> np.ndarray:
        embeds = self.model.embed_images(
            self._normalise(images), batch_size=self.embed_batch_size)
        self.progress(len(images))
        return embeds.cpu().numpy()

    def embed_captions(self, rows: Sequence[int]) -> np.ndarray:
        """L2-normalised ITC caption embeddings (N, D) of the rows."""
        rows = [int(r) for r in rows]
        if not rows:
            return np.zeros((0, 0), np.float32)
        input_ids, attention_mask = self.tokens(rows)
        chunks = []
        for start in range(0, len(rows), self.embed_batch_size):
            stop = start + self.embed_batch_size
            chunks.append(
                self.model.embed_texts(
                    input_ids[start:stop],
                    attention_mask[start:stop],
                    batch_size=self.embed_batch_size).cpu().numpy())
            self.progress(len(chunks[-1]))
        return np.concatenate(chunks)
