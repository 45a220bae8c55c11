"""The TGIR test loop: FashionIQ's protocol by the model's scoring API."""
from typing import Dict, List, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.runner.base_loop import BaseLoop
from torch.utils.data import DataLoader

from mvlt.datasets.transforms import LoadImage
from mvlt.evaluation.metrics.tgir import METHODS, composed_ranks
from mvlt.models.utils import itc_similarity
from mvlt.registry import LOOPS
from .utils import build_test_evaluator, check_model_heads, unwrap_model

#: Heads each query method needs.
_METHOD_HEADS = {
    'composed': ('tgir', 'itc'),
    'text-only': ('itc', ),
    'image-only': ('itc', )
}


@LOOPS.register_module()
class TGIRTestLoop(BaseLoop):
    """Rank each category's gallery for every pair of a FashionIQ split.

    Per category (the test data set's :attr:`FashionIQDataset.galleries`):
    every gallery image is embedded once by :meth:`MVLT.embed_images` (the
    ITC image tower); each query by the methods asked for:

    * ``'composed'``: :meth:`MVLT.embed_composed` of the reference image and
      the joined relative captions (the TGIR head);
    * ``'text-only'``: :meth:`MVLT.embed_texts` of the joined captions;
    * ``'image-only'``: the reference image's gallery embedding.

    Similarities are dot products (:func:`itc_similarity`) and ranks
    follow :func:`composed_ranks` (reference removed, ties against the
    target). The evaluator gets one item per (method, query):
    ``FashionIQMetric``. Every process computes the whole evaluation (the
    sets are small: FashionIQ val has 15,415 images); images are read with
    :class:`LoadImage`.

    Args:
        runner, dataloader, evaluator: As MMEngine's loops (the dataloader's
            data set is a :class:`FashionIQDataset`).
        methods (Sequence[str]): Of ``'composed'``, ``'text-only'``,
            ``'image-only'``.
        batch_size (int): Images (or queries) per forward pass.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 methods: Sequence[str] = METHODS,
                 batch_size: int = 64) -> None:
        evaluator = build_test_evaluator(runner, evaluator)
        super().__init__(runner, dataloader)
        unknown = [m for m in methods if m not in _METHOD_HEADS]
        if unknown or not methods:
            raise ValueError(f'TGIRTestLoop: unknown methods {unknown}; '
                             f'choose from {tuple(_METHOD_HEADS)}.')
        self.evaluator = evaluator
        self.methods = tuple(methods)
        self.batch_size = int(batch_size)
        self.loader = LoadImage()

    def _images(self, model, paths: Sequence[str]) -> torch.Tensor:
        """Normalised (N, 3, H, W) model inputs of image files."""
        pixels = [
            torch.from_numpy(self.loader(dict(
                img_path=p))['img']).permute(2, 0, 1) for p in paths
        ]
        preprocessor = model.data_preprocessor
        return preprocessor.normalize(preprocessor.prepare_images(pixels))

    def _embed_images(self, model, paths: Sequence[str]) -> np.ndarray:
        out = [
            model.embed_images(
                self._images(model, paths[i:i + self.batch_size]),
                self.batch_size) for i in range(0, len(paths), self.batch_size)
        ]
        return torch.cat(out).cpu().numpy()

    def _embed_queries(self, model, method: str, queries: List[dict],
                       gallery_embeds: np.ndarray) -> np.ndarray:
        if method == 'image-only':
            rows = [q['reference_index'] for q in queries]
            if min(rows) >= 0:
                return gallery_embeds[rows]
            return self._embed_images(model, [q['img_path'] for q in queries])
        out = []
        device = model.data_preprocessor.device
        for i in range(0, len(queries), self.batch_size):
            chunk = queries[i:i + self.batch_size]
            ids, mask = model.data_preprocessor.tokenize(
                [q['caption'] for q in chunk])
            ids, mask = ids.to(device), mask.to(device)
            if method == 'text-only':
                out.append(model.embed_texts(ids, mask, self.batch_size))
            else:
                images = self._images(model, [q['img_path'] for q in chunk])
                out.append(
                    model.embed_composed(images, ids, mask, self.batch_size))
        return torch.cat(out).cpu().numpy()

    def run(self) -> dict:
        """Embed, rank and evaluate; returns the metrics."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        model = unwrap_model(self.runner.model)
        check_model_heads(
            self.runner, model,
            sorted({h
                    for m in self.methods
                    for h in _METHOD_HEADS[m]}))
        dataset = self.dataloader.dataset
        if not hasattr(dataset, 'galleries'):
            raise TypeError('TGIRTestLoop needs a FashionIQDataset as the '
                            f'test data set, got {type(dataset).__name__}.')
        dataset.check_queries_in_gallery()
        queries = [dataset.get_data_info(i) for i in range(len(dataset))]
        model.eval()
        with torch.no_grad():
            for category in dataset.categories:
                self._run_category(model, category, [
                    q for q in queries if q['category'] == category
                ], dataset.galleries[category])
        # One item per (method, query); evaluate() keeps that many.
        metrics = self.evaluator.evaluate(len(queries) * len(self.methods))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    def _run_category(self, model, category: str, queries: List[dict],
                      gallery: List[dict]) -> None:
        if not queries:
            return
        print_log(
            f'TGIR {category}: {len(queries)} queries, {len(gallery)} '
            'gallery images',
            logger='current')
        gallery_embeds = self._embed_images(model,
                                            [g['img_path'] for g in gallery])
        targets = np.array([q['target_index'] for q in queries])
        references = np.array([q['reference_index'] for q in queries])
        for method in self.methods:
            embeds = self._embed_queries(model, method, queries,
                                         gallery_embeds)
            ranks = composed_ranks(
                itc_similarity(embeds, gallery_embeds), targets, references)
            self.evaluator.process(
                data_samples=[
                    dict(
                        method=method,
                        category=category,
                        query_id=q['sample_idx'],
                        rank=int(rank)) for q, rank in zip(queries, ranks)
                ],
                data_batch=None)
