"""``--mode data`` and ``--mode e2e``: the config's real training loader,
alone and feeding the training step."""
import argparse
import copy
import math
import time
from typing import Any, Dict, Iterator, List, Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from .common import (Variant, compile_options, img_size_of, pipeline_img_size,
                     text_len_of, workers_of)
from .measure import summarize, synchronize
from .train import run_train


def loader_config(cfg: Config, args: argparse.Namespace, workers: int,
                  device: torch.device) -> Config:
    """The config's ``train_dataloader`` with ``workers`` processes.

    Raises:
        KeyError: The config has no ``train_dataloader``.
    """
    if cfg.get('train_dataloader') is None:
        raise KeyError(
            f'{args.config} has no train_dataloader; the data and e2e modes '
            'need a data config, e.g. configs/mvlt/pretrain_fashiongen.py '
            'with --cfg-options train_dataloader.dataset.data_root=DIR/ (make '
            'DIR with tools/misc/make_synthetic_fashiongen.py).')
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    if args.batch_size:
        loader_cfg.batch_size = args.batch_size
    loader_cfg.num_workers = workers
    loader_cfg.persistent_workers = workers > 0
    loader_cfg.pin_memory = device.type == 'cuda' and bool(
        loader_cfg.get('pin_memory', False))
    return loader_cfg


def endless(loader) -> Iterator:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def time_loader(loader_cfg: Config, args: argparse.Namespace) -> dict:
    """Samples/s of a loader over ``args.iters`` batches after
    ``args.warmup`` (workers start and prefetch first)."""
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batches = endless(loader)
    for _ in range(args.warmup):
        next(batches)
    # Workers prefetch, so single batches come in bursts: the figure is
    # samples over the whole timed span; per-batch figures show the spread.
    # One process (no workers) with --clock process counts its CPU time,
    # which other jobs on a shared machine do not stretch.
    process_clock = args.clock == 'process' and loader_cfg.num_workers == 0
    clock = time.process_time if process_clock else time.perf_counter
    stamps: List[float] = [clock()]
    samples = []
    for _ in range(args.iters):
        batch = next(batches)
        stamps.append(clock())
        samples.append(len(batch['data_samples']))
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    del batches, loader
    return dict(
        num_workers=loader_cfg.num_workers,
        clock='process' if process_clock else 'wall',
        batches=len(gaps),
        samples_per_s=sum(samples) / (stamps[-1] - stamps[0]),
        per_batch=summarize([n / g for n, g in zip(samples, gaps)]))


def run_data(cfg: Config, args: argparse.Namespace,
             device: torch.device) -> Dict[str, Any]:
    """The training loader alone: one process (``num_workers=0``: the rate
    of one loader process), then with each ``--workers N``."""
    settings = [0] + [n for n in workers_of(args, 0) if n > 0]
    runs = [
        time_loader(loader_config(cfg, args, n, device), args)
        for n in settings
    ]
    base = loader_config(cfg, args, 0, device)
    per_process = runs[0]['samples_per_s']
    result: Dict[str, Any] = dict(
        settings=dict(
            batch_size=base.batch_size,
            dataset=base.dataset.get('type'),
            batches=args.iters),
        runs=runs,
        per_process_samples_per_s=per_process)
    if args.target_rate:
        result['target_samples_per_s'] = args.target_rate
        result['processes_needed'] = math.ceil(args.target_rate / per_process)
    if not args.no_model_compare:
        img_size = pipeline_img_size(base.dataset.get('pipeline', [])) or \
            img_size_of(cfg, args)
        model_args = copy.copy(args)
        model_args.compile = False
        model = run_train(
            cfg,
            None,
            model_args,
            device,
            img_size,
            text_len_of(cfg, args),
            base.batch_size,
            memory=False)
        rate = model['variants']['fast']['samples_per_s']['median']
        result['model_train_samples_per_s'] = rate
        result['model_settings'] = model['settings']
        result['data_vs_model'] = {
            str(r['num_workers']): r['samples_per_s'] / rate
            for r in runs
        }
    return result


def run_e2e(cfg: Config, args: argparse.Namespace,
            device: torch.device) -> Dict[str, Any]:
    """The real loader feeding the training step, for each ``--workers``.

    Per step, the wait for the next batch and the step itself
    (``model.train_step``: preprocessor, forward, backward, optimizer) are
    timed apart; the figures are end-to-end samples/s and the share of the
    time spent waiting for data.
    """
    settings = loader_config(cfg, args, 0, device)  # fails early if none
    variant = Variant(
        'fast',
        cfg,
        device,
        compile=compile_options(args) if args.compile else None)
    runs = []
    for workers in workers_of(args, cfg.train_dataloader.get('num_workers')):
        loader_cfg = loader_config(cfg, args, workers, device)
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        batches = endless(loader)
        waits, steps, samples = [], [], []
        for index in range(args.warmup + args.iters):
            start = time.perf_counter()
            batch = next(batches)
            got = time.perf_counter()
            variant.train_step(batch)
            synchronize(device)
            if index >= args.warmup:
                waits.append(got - start)
                steps.append(time.perf_counter() - got)
                samples.append(len(batch['data_samples']))
        del batches, loader
        total = sum(waits) + sum(steps)
        runs.append(
            dict(
                num_workers=workers,
                steps=len(steps),
                samples_per_s=sum(samples) / total,
                step_only_samples_per_s=sum(samples) / sum(steps),
                wait_share=sum(waits) / total,
                wait_seconds=summarize(waits),
                step_seconds=summarize(steps)))
        print_e2e(runs[-1])
    return dict(
        settings=dict(
            batch_size=settings.batch_size,
            dataset=cfg.train_dataloader.dataset.get('type'),
            amp=args.amp,
            compile=variant.model.compile_options),
        runs=runs)


def print_e2e(run: Dict[str, Any]) -> None:
    print(
        f"  {run['num_workers']} workers: {run['samples_per_s']:.2f} "
        f"samples/s end to end ({run['step_only_samples_per_s']:.2f} "
        f"without waiting); waiting {100 * run['wait_share']:.1f} % of "
        f"the time (median wait {run['wait_seconds']['median']:.3f} s, "
        f"step {run['step_seconds']['median']:.3f} s)",
        flush=True)


def print_data(result: Dict[str, Any], target: Optional[float] = None) -> None:
    for run in result['runs']:
        spread = run['per_batch']
        print(f"  {run['num_workers']} workers: {run['samples_per_s']:.1f} "
              f"samples/s over {run['batches']} batches (per batch: p25 "
              f"{spread['p25']:.1f}, p75 {spread['p75']:.1f})")
    if 'processes_needed' in result:
        print(f"  one loader process: "
              f"{result['per_process_samples_per_s']:.1f}"
              f" samples/s -> {result['processes_needed']} processes for "
              f"{result['target_samples_per_s']:.0f} samples/s")
    if 'data_vs_model' in result:
        print(f"  model training (fast path): "
              f"{result['model_train_samples_per_s']:.2f} samples/s; data / "
              f"model by workers: {result['data_vs_model']}")
