"""Batched ITM scoring and ITC embedding of data set rows for retrieval.

Work is organised by image: a list of *groups* ``(image_row, caption_rows)``
is scored by streaming the images in order through a DataLoader (decoded
and resized once, kept as uint8 until their last pair is scored) and the
captions from a table tokenised once. Pairs go through the model in batches
of exactly ``pair_batch_size`` (the last one is padded): on CPU a row's
output is then bitwise independent of its neighbours, so a pair scores the
same in every protocol, mode and number of processes.
"""
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from mvlt.datasets.transforms import Tokenize

Group = Tuple[int, np.ndarray]


def find_tokenizer(dataset) -> Tokenize:
    """The ``Tokenize`` transform of a data set's pipeline."""
    pipeline = getattr(dataset, 'pipeline', None)
    for transform in getattr(pipeline, 'transforms', []) or []:
        if isinstance(transform, Tokenize):
            return transform
    raise ValueError(
        f'The test pipeline of {type(dataset).__name__} has no Tokenize '
        'transform; retrieval tokenises the captions with it (add '
        "dict(type='Tokenize', tokenizer=..., max_length=...)).")


class RetrievalScorer:
    """Scores (caption row, image row) pairs of a data set.

    Args:
        model: The (unwrapped) MVLT model, in eval mode.
        dataset: The test data set; its pipeline loads, resizes and packs
            images and holds the ``Tokenize`` transform.
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
        self.tokenize = find_tokenizer(dataset)
        self._tokens: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}

    @property
    def device(self) -> torch.device:
        return self.model.data_preprocessor.device

    # ------------------------------------------------------------- inputs
    def tokens(self, rows: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` (N, L) of the rows' captions,
        tokenised once per scorer."""
        for row in rows:
            row = int(row)
            if row not in self._tokens:
                out = self.tokenize.transform(dict(caption=self.captions[row]))
                self._tokens[row] = (out['input_ids'], out['attention_mask'])
        ids = np.stack([self._tokens[int(r)][0] for r in rows])
        mask = np.stack([self._tokens[int(r)][1] for r in rows])
        return (torch.from_numpy(ids).to(self.device),
                torch.from_numpy(mask).to(self.device))

    def iter_images(self, rows: Sequence[int]) -> Iterator[torch.Tensor]:
        """uint8 (3, H, W) image of each row, in order, decoded by the data
        set's pipeline in ``num_workers`` processes."""
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
            yield from images

    def _normalise(self, images: List[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(images).to(self.device)
        return self.model.data_preprocessor.normalize(stacked)

    @staticmethod
    def _pad(items: list, size: int) -> list:
        return items + [items[0]] * (size - len(items))

    # ---------------------------------------------------------------- ITM
    def _itm(self, images: List[torch.Tensor],
             caption_rows: List[int]) -> np.ndarray:
        count = len(images)
        images = self._pad(images, self.pair_batch_size)
        caption_rows = self._pad(caption_rows, self.pair_batch_size)
        input_ids, attention_mask = self.tokens(caption_rows)
        batch = dict(
            images=self._normalise(images),
            input_ids=input_ids,
            attention_mask=attention_mask)
        scores = self.model.predict_outputs(batch, tasks=('itm', ))
        self.progress(count)
        return scores['itm_score'][:count].float().cpu().numpy()

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
    def _embed(self, batch: Dict[str, torch.Tensor], key: str,
               count: int) -> np.ndarray:
        outputs = self.model.predict_outputs(batch, tasks=('itc', ))
        self.progress(count)
        return outputs[key][:count].float().cpu().numpy()

    def embed_images(self, rows: Sequence[int]) -> np.ndarray:
        """L2-normalised ITC image embeddings (N, D) of the rows."""
        chunks, batch = [], []
        for image in self.iter_images(rows):
            batch.append(image)
            if len(batch) == self.embed_batch_size:
                chunks.append(
                    self._embed(
                        dict(images=self._normalise(batch)),
                        'itc_image_embeds', len(batch)))
                batch = []
        if batch:
            count = len(batch)
            batch = self._pad(batch, self.embed_batch_size)
            chunks.append(
                self._embed(
                    dict(images=self._normalise(batch)), 'itc_image_embeds',
                    count))
        return np.concatenate(chunks) if chunks else np.zeros(
            (0, 0), np.float32)

    def embed_captions(self, rows: Sequence[int]) -> np.ndarray:
        """L2-normalised ITC caption embeddings (N, D) of the rows."""
        rows = [int(r) for r in rows]
        chunks = []
        for start in range(0, len(rows), self.embed_batch_size):
            chunk = rows[start:start + self.embed_batch_size]
            input_ids, attention_mask = self.tokens(
                self._pad(chunk, self.embed_batch_size))
            chunks.append(
                self._embed(
                    dict(input_ids=input_ids, attention_mask=attention_mask),
                    'itc_text_embeds', len(chunk)))
        return np.concatenate(chunks) if chunks else np.zeros(
            (0, 0), np.float32)
