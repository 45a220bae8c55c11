"""``--mode train`` and ``--sweep``: training steps on synthetic batches."""
import argparse
import copy
from typing import Any, Dict, Optional

import torch
from mmengine.config import Config

from .common import (Variant, build_variants, figures, rate_key,
                     set_model_setting, synthetic_for, text_len_of,
                     timed_rounds)
from .measure import PeakMemory, count_flops, growth_exponent, summarize


def train_flops(variant: Variant, data: dict) -> tuple:
    """FLOPs of one training step's forward + backward, and its pairs."""
    model = variant.model

    def forward_backward():
        batch = model.data_preprocessor(data, True)
        losses = model(**batch, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        return batch['inputs']['images'].shape[0]

    with variant.wrapper.optim_context(model):
        flops, pairs = count_flops(forward_backward)
    variant.wrapper.zero_grad()
    return flops, pairs


def run_train(cfg: Config, baseline: Optional[Config],
              args: argparse.Namespace, device: torch.device, img_size: int,
              text_len: int, batch_size: int, memory: bool) -> Dict[str, Any]:
    """Interleaved training steps of every variant; figures per variant.

    A step is ``model.train_step`` (data preprocessor, forward, backward,
    optimizer) on one synthetic batch, the same batch every round.
    """
    variants = build_variants(cfg, baseline, args, device, train=True)
    fast = variants['fast']
    data = synthetic_for(fast, args, batch_size, img_size, text_len)
    # FLOPs from the eager model (a compiled one computes the same).
    flops, pairs = train_flops(fast, data)
    baseline_flops = train_flops(variants['baseline'],
                                 data)[0] if 'baseline' in variants else None
    steps = {
        name: (lambda v=variant: v.train_step(data))
        for name, variant in variants.items()
    }
    times = timed_rounds(steps, args, device)
    result = figures(times, flops, pairs, batch_size, args, device, 'samples')
    if baseline_flops:
        result['baseline_flops_per_sample'] = baseline_flops / pairs
    result['settings'] = dict(
        batch_size=batch_size,
        pairs_per_step=pairs,
        img_size=img_size,
        text_len=text_len,
        caption_len=args.caption_len,
        amp=args.amp,
        clock=args.clock,
        compile=variants['fast+compile'].model.compile_options
        if 'fast+compile' in variants else None)
    if memory:
        result['memory'] = train_memory(variants, data, device)
        add_memory_ratio(result)
    return result


def train_memory(variants: Dict[str, Variant], data: dict,
                 device: torch.device) -> Dict[str, Any]:
    """Peak tensor memory of one training step per eager variant (the CPU
    tracker does not follow compiled graphs)."""
    memory = {}
    for name, variant in variants.items():
        if name.endswith('compile'):
            continue
        variant.train_step(data)
        with PeakMemory(device, [variant.model],
                        [variant.wrapper.optimizer]) as peak:
            variant.train_step(data)
        memory[name] = dict(
            start_bytes=peak.start_bytes,
            peak_bytes=peak.peak_bytes,
            increase_bytes=peak.increase_bytes)
    return memory


def add_memory_ratio(result: Dict[str, Any]) -> None:
    memory = result['memory']
    if 'fast' in memory and 'baseline' in memory:
        result['memory_ratio_fast_vs_baseline'] = dict(
            increase=memory['fast']['increase_bytes'] /
            max(memory['baseline']['increase_bytes'], 1),
            peak=memory['fast']['peak_bytes'] /
            max(memory['baseline']['peak_bytes'], 1))


def run_sweep(cfg: Config, args: argparse.Namespace,
              device: torch.device) -> Dict[str, Any]:
    """Fast-path training figures over image sizes, then caption lengths.

    One fast model per point, all timed round by round like the variants
    of a train run: a change of machine load hits every point alike, so the
    fitted exponent of time in visual tokens compares like with like.
    """
    batch_size = args.batch_size or 8
    sizes = sorted(args.sweep_img_sizes)
    base_img = 256 if 256 in sizes else sizes[0]
    base_len = text_len_of(cfg, args)
    points = [(s, base_len) for s in sizes] + [
        (base_img, n) for n in args.sweep_text_lens if n != base_len
    ]
    steps, flops, names = {}, {}, []
    for img_size, text_len in points:
        point_cfg = copy.deepcopy(cfg)
        set_model_setting(point_cfg.model, 'img_size', img_size)
        set_model_setting(point_cfg.model, 'text_len', text_len)
        variant = Variant('fast', point_cfg, device)
        data = synthetic_for(variant, args, batch_size, img_size, text_len)
        name = f'{img_size}px_L{text_len}'
        names.append(name)
        flops[name] = train_flops(variant, data)
        steps[name] = (lambda v=variant, d=data: v.train_step(d))
    times = timed_rounds(steps, args, device)
    rates = times.pop('between')
    key = rate_key(args, device)
    rows = []
    for name, (img_size, text_len) in zip(names, points):
        step_flops, pairs = flops[name]
        seconds = summarize(times[name])['median']
        achieved = [step_flops / t / 1e9 for t in times[name]]
        rows.append(
            dict(
                img_size=img_size,
                text_len=text_len,
                visual_tokens=(img_size // 4)**2,
                seconds=seconds,
                raw_seconds=times[name],
                samples_per_s=batch_size / seconds,
                gflops_per_sample=step_flops / pairs / 1e9,
                achieved_gflops=summarize(achieved)['median'],
                fraction_of_matmul=summarize(
                    [a / r[key] for a, r in zip(achieved, rates)])['median']))
        print_row(rows[-1])
    by_size = {r['img_size']: r for r in rows if r['text_len'] == base_len}
    low, high = (256, 512) if {256, 512} <= set(sizes) else (sizes[0],
                                                             sizes[-1])
    out: Dict[str, Any] = dict(
        rows=rows,
        exponent_sizes=[low, high],
        matmul_gflops=summarize([r[key] for r in rates]))
    if len(sizes) > 1:
        out['exponent'] = growth_exponent(
            [by_size[low]['visual_tokens'], by_size[high]['visual_tokens']],
            [by_size[low]['seconds'], by_size[high]['seconds']])
        out['exponent_all_sizes'] = growth_exponent(
            [by_size[s]['visual_tokens'] for s in sizes],
            [by_size[s]['seconds'] for s in sizes])
    return out


def print_row(row: Dict[str, Any]) -> None:
    print(
        f"  {row['img_size']:4d} px  L={row['text_len']:3d}  "
        f"N={row['visual_tokens']:6d}  {row['seconds']:.3f} s/step  "
        f"{row['samples_per_s']:7.2f} samples/s  "
        f"{row['gflops_per_sample']:6.1f} GFLOP/sample  "
        f"{row['achieved_gflops']:7.1f} GFLOP/s "
        f"({100 * row['fraction_of_matmul']:.0f} % of matmul)",
        flush=True)
