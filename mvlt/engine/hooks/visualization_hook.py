"""Saving figures of test results: retrieval rankings and MIG triplets."""
import os
import os.path as osp
from typing import Optional, Sequence

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mvlt.registry import HOOKS
from mvlt.visualization import (denormalize, masked_view,
                                reconstruction_figure, retrieval_figure,
                                to_rgb_uint8, write_rgb_image)


@HOOKS.register_module()
class MVLTVisualizationHook(Hook):
    """Save figures of a test run into ``out_dir`` (``--show-dir``).

    * Retrieval (``RetrievalTestLoop``): for the first ``num_queries``
      queries of each direction, the query and its top candidates with the
      positive framed green (and shown with its rank when it is not among
      them): ``<out_dir>/retrieval/<protocol>_<split>_<TIR|ITR>_<q>.png``.
    * Masked image generation (samples with ``reconstruction``): masked /
      reconstructed / original triplets of the first ``num_samples``
      images: ``<out_dir>/mig/<sample_idx>.png``.

    Args:
        out_dir (str, optional): Folder of the figures; None disables the
            hook (``tools/test.py --show-dir`` sets it).
        num_queries (int): Queries drawn per direction.
        num_samples (int): MIG samples drawn.
        tile_size (int): Side of each image tile in pixels.
    """

    priority = 'LOW'

    def __init__(self,
                 out_dir: Optional[str] = None,
                 num_queries: int = 8,
                 num_samples: int = 8,
                 tile_size: int = 128) -> None:
        self.out_dir = out_dir
        self.num_queries = num_queries
        self.num_samples = num_samples
        self.tile_size = tile_size
        self._drawn = 0

    def before_test(self, runner) -> None:
        self._drawn = 0

    @master_only
    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        """MIG triplets of the first samples."""
        if not self.out_dir or not outputs:
            return
        preprocessor = self._model(runner).data_preprocessor
        folder = osp.join(self.out_dir, 'mig')
        for sample in outputs:
            if self._drawn >= self.num_samples:
                return
            if 'reconstruction' not in sample or \
                    'target_images' not in sample:
                return
            mean, std = preprocessor.mean.flatten(), preprocessor.std.flatten()
            original = denormalize(sample.target_images, mean, std)
            recon = denormalize(sample.reconstruction, mean, std)
            mask = sample.get('image_mask')
            masked = masked_view(original, mask.cpu().numpy()) \
                if mask is not None else original
            index = sample.get('sample_idx', self._drawn)
            figure = reconstruction_figure(
                masked,
                recon,
                original,
                self.tile_size,
                title=f'sample {index}')
            os.makedirs(folder, exist_ok=True)
            write_rgb_image(osp.join(folder, f'{index}.png'), figure)
            self._drawn += 1

    @master_only
    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Retrieval figures from the loop's ranked queries."""
        loop = runner.test_loop
        records = getattr(loop, 'records', None)
        if not self.out_dir or not records:
            return
        dataset = loop.dataset
        folder = osp.join(self.out_dir, 'retrieval')
        os.makedirs(folder, exist_ok=True)
        drawn = {}
        for record in records:
            direction = record['direction']
            if drawn.get(direction, 0) >= self.num_queries:
                continue
            drawn[direction] = drawn.get(direction, 0) + 1
            text_query = direction == 'text_to_image'

            def item(row: int, is_image: bool):
                if is_image:
                    return to_rgb_uint8(dataset[row]['inputs']['images'])
                return dataset.get_data_info(row)['caption']

            query = item(record['query_row'], not text_query)
            candidates = [item(r, text_query) for r in record['topk_rows']]
            extra = None
            if not any(record['topk_positive']):
                extra = item(record['positive_row'], text_query)
            task = 'TIR' if text_query else 'ITR'
            title = (f"{record['protocol']} / {record['split']} / {task} "
                     f"query {record['query_id']}: positive at rank "
                     f"{record['rank']}")
            figure = retrieval_figure(
                query,
                candidates,
                record['topk_positive'],
                record['topk_scores'],
                extra_positive=extra,
                extra_rank=record['rank'],
                size=self.tile_size,
                title=title)
            name = (f"{record['protocol']}_{record['split']}_{task}_"
                    f"{record['query_id']}.png")
            write_rgb_image(osp.join(folder, name), figure)

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model
