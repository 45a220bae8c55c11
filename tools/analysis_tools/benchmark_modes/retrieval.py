"""``--mode retrieval``: ITM scoring of image-caption pair batches."""
import argparse
from typing import Any, Callable, Dict, Optional

import torch
from mmengine.config import Config

from .common import (Variant, autocast_context, build_variants, caption_len_of,
                     figures, img_size_of, synthetic_for, text_len_of,
                     timed_rounds)
from .measure import count_flops, interleaved_timings, summarize

#: COCO 5K test split: images x captions scored by the exact protocol.
COCO_IMAGES, COCO_CAPTIONS = 5000, 25000


def run_retrieval(cfg: Config, baseline: Optional[Config],
                  args: argparse.Namespace,
                  device: torch.device) -> Dict[str, Any]:
    """ITM scores of synthetic pair batches, every variant interleaved
    (``MVLT.predict_outputs(batch, tasks=('itm',))``; the baseline runs
    its configured ``predict_tasks``, as a straightforward implementation
    runs every head)."""
    variants = build_variants(cfg, baseline, args, device, train=False)
    fast = variants['fast']
    batch_size = args.batch_size or 32
    img_size, text_len = img_size_of(cfg, args), text_len_of(cfg, args)
    data = synthetic_for(fast, args, batch_size, img_size, text_len)
    # Decoded and normalised once, reused by every call (as the retrieval
    # loop reuses an image across its 101 pairings).
    batch = fast.model.data_preprocessor(data, False)['inputs']

    def score(variant: Variant) -> Callable[[], torch.Tensor]:
        tasks = None if variant.name == 'baseline' else ('itm', )

        def run():
            with torch.inference_mode(), autocast_context(args, device):
                return variant.model.predict_outputs(batch, tasks)['itm_score']

        return run

    steps = {name: score(v) for name, v in variants.items()}
    with torch.inference_mode():
        flops, _ = count_flops(steps['fast'])
        baseline_flops = count_flops(
            steps['baseline'])[0] if 'baseline' in steps else None
    scores = {name: step().float().cpu() for name, step in steps.items()}
    times = timed_rounds(steps, args, device)
    result = figures(times, flops, batch_size, batch_size, args, device,
                     'pairs')
    if baseline_flops:
        result['baseline_flops_per_sample'] = baseline_flops / batch_size
    result['max_abs_score_difference'] = {
        name: float((s - scores['fast']).abs().max())
        for name, s in scores.items() if name != 'fast'
    }
    result['settings'] = dict(
        batch_size=batch_size,
        img_size=img_size,
        text_len=text_len,
        caption_len=caption_len_of(args),
        amp=args.amp,
        clock=args.clock,
        compile=args.compile)
    result['unimodal_items_per_s'] = unimodal_rates(fast, batch, args, device)
    best = max(v['pairs_per_s']['median']
               for name, v in result['variants'].items() if name != 'baseline')
    result['coco5k_estimate'] = coco_estimate(best,
                                              result['unimodal_items_per_s'])
    return result


def unimodal_rates(variant: Variant, batch: dict, args: argparse.Namespace,
                   device: torch.device) -> Dict[str, float]:
    """Image-only and caption-only encoder passes per second (the first
    stage of re-ranking embeds every image and caption once)."""
    backbone = variant.model.backbone
    images = batch['images']
    input_ids, attention_mask = batch['input_ids'], batch['attention_mask']
    runs = dict(
        image=lambda: backbone(images, None, None),
        caption=lambda: backbone(None, input_ids, attention_mask))
    rates = {}
    for name, run in runs.items():
        with torch.inference_mode(), autocast_context(args, device):
            times = interleaved_timings({name: run},
                                        max(2, args.iters // 2),
                                        1,
                                        device,
                                        clock=args.clock)
        rates[name] = images.shape[0] / summarize(times[name])['median']
    return rates


def coco_estimate(pairs_per_s: float,
                  unimodal: Dict[str, float],
                  gpus: int = 8,
                  top_k: int = 128) -> Dict[str, float]:
    """Wall time of COCO 5K retrieval on ``gpus`` such devices.

    Exact: every (image, caption) pair scored once by ITM (125 M pairs; one
    score serves both directions). Re-ranking: every image and caption
    embedded once by a unimodal pass, then the top ``top_k`` candidates of
    every query in both directions scored by ITM.
    """
    exact_pairs = COCO_IMAGES * COCO_CAPTIONS
    rerank_pairs = (COCO_IMAGES + COCO_CAPTIONS) * top_k
    embed = COCO_IMAGES / unimodal['image'] + \
        COCO_CAPTIONS / unimodal['caption']
    return dict(
        gpus=gpus,
        top_k=top_k,
        exact_pairs=exact_pairs,
        exact_hours=exact_pairs / pairs_per_s / gpus / 3600,
        rerank_pairs=rerank_pairs,
        rerank_minutes=(rerank_pairs / pairs_per_s + embed) / gpus / 60)
