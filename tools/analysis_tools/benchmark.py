"""Speed benchmark of MVLT: the fast path and the baseline side by side.

    python tools/analysis_tools/benchmark.py CONFIG [--mode MODE]
        [--batch-size N] [--img-size S] [--text-len L] [--iters N]
        [--warmup N] [--amp] [--compile] [--sweep] [--device cpu|cuda]
        [--caption-len MIN [MAX]] [--no-baseline] [--no-memory]
        [--out FILE.json] [--cfg-options KEY=VALUE ...]

``train`` times whole training steps (data preprocessor, forward, backward,
optimizer) of the fast model and of its baseline counterpart
(``mvlt.utils.benchmark.baseline_config``), alternating step by step so that
both see the same machine load; ``retrieval`` times ITM scoring of batches
of image-caption pairs (``MVLT.predict_outputs(batch, tasks=('itm',))``);
``data`` times the config's training data loader alone. Inputs are synthetic
and a throw-away vocabulary is used when the configured one is missing, so
the train and retrieval modes need nothing on disk.

Figures: median and spread of samples/s (train) or pairs/s (retrieval), peak
tensor memory of a step (CUDA: max allocated; CPU: torch's MemTracker),
FLOPs per sample (``torch.utils.flop_counter``), the achieved GFLOP/s and the
machine's matmul rate measured in the same rounds, and fast / baseline
ratios. ``--sweep`` repeats the training figures over image sizes 192 / 256
/ 384 / 512 and caption lengths 64 / 128 / 256 and fits the growth exponent
of time in the number of visual tokens. Everything is also written as JSON
(``--out``, or ``$OUT/benchmark_<mode>.json`` if ``$OUT`` is set).
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import tempfile
import time
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from mvlt.models.layers import onednn_available
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules
from mvlt.utils.benchmark import (PeakMemory, baseline_config, count_flops,
                                  growth_exponent, interleaved_timings,
                                  matmul_rate, summarize, synthetic_samples,
                                  tune_cpu_allocator, write_throwaway_vocab)
from mvlt.utils.config import enable_amp, load_config

#: COCO 5K test split: images x captions scored by the exact protocol.
COCO_IMAGES, COCO_CAPTIONS = 5000, 25000
SWEEP_IMG_SIZES = (192, 256, 384, 512)
SWEEP_TEXT_LENS = (64, 128, 256)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='MVLT speed benchmark (fast path vs baseline)')
    parser.add_argument('config', help='model config (with optim_wrapper)')
    parser.add_argument(
        '--mode', choices=['train', 'retrieval', 'data'], default='train')
    parser.add_argument(
        '--batch-size',
        type=int,
        help='images per training step (default 8) or pairs per retrieval '
        'batch (default 32); data mode: the config\'s')
    parser.add_argument('--img-size', type=int, help='image side in pixels')
    parser.add_argument('--text-len', type=int, help='caption length L')
    parser.add_argument(
        '--caption-len',
        type=int,
        nargs='+',
        help='real tokens per synthetic caption: N or MIN MAX (default: '
        'full length, no padding)')
    parser.add_argument(
        '--iters',
        type=int,
        default=5,
        help='timed rounds (data mode: timed batches, e.g. 100)')
    parser.add_argument(
        '--warmup', type=int, default=2, help='untimed rounds first')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision (bf16 where supported, else fp16 + loss '
        'scaling) through AmpOptimWrapper / autocast')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='also time the fast model under torch.compile')
    parser.add_argument(
        '--compile-backend',
        default='inductor',
        help='torch.compile backend of --compile')
    parser.add_argument(
        '--sweep',
        action='store_true',
        help='training figures over image sizes and caption lengths')
    parser.add_argument(
        '--sweep-img-sizes',
        type=int,
        nargs='+',
        default=list(SWEEP_IMG_SIZES),
        help='image sides of --sweep (at the config\'s caption length)')
    parser.add_argument(
        '--sweep-text-lens',
        type=int,
        nargs='+',
        default=list(SWEEP_TEXT_LENS),
        help='caption lengths of --sweep (at 256 px or the first size)')
    parser.add_argument('--device', help='cpu or cuda (default: cuda if any)')
    parser.add_argument(
        '--no-baseline', action='store_true', help='fast path only')
    parser.add_argument(
        '--no-memory', action='store_true', help='skip peak-memory figures')
    parser.add_argument(
        '--no-malloc-tuning',
        action='store_true',
        help='CPU: keep glibc\'s default of returning freed memory')
    parser.add_argument(
        '--no-model-compare',
        action='store_true',
        help='data mode: skip timing the model at the same settings')
    parser.add_argument('--out', help='write the figures to this JSON file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


# --------------------------------------------------------------- set-up
def machine_info(device: torch.device) -> Dict[str, Any]:
    """What the figures were measured on."""
    info = dict(
        torch=torch.__version__,
        python=platform.python_version(),
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine())
    try:
        with open('/proc/cpuinfo') as f:
            names = [
                line.split(':', 1)[1].strip() for line in f
                if line.startswith('model name')
            ]
        info['cpu'] = f'{names[0]} x {len(names)}' if names else info['cpu']
    except OSError:
        pass
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def prepare_config(args: argparse.Namespace, work_dir: str) -> Config:
    """Load the config and make it runnable without data or vocabulary."""
    cfg = load_config(args.config, args.cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'{args.config} has no model; pass a model config '
                       '(for example configs/mvlt/benchmark/'
                       'mvlt_pvt-tiny_256px.py).')
    if args.mode != 'data' and 'optim_wrapper' not in cfg:
        cfg.optim_wrapper = dict(
            type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))
    backbone = cfg.model.backbone
    if args.img_size:
        backbone.img_size = args.img_size
    if args.text_len:
        backbone.text_len = max(args.text_len, backbone.get('text_len', 128))
    # Speed figures do not depend on the init checkpoint; nothing is read.
    backbone.pop('init_cfg', None)
    cfg.model.pop('init_cfg', None)
    # Speed depends on the vocabulary's size only: the model gets a made-up
    # vocabulary of the configured size (the data pipeline of data mode keeps
    # its own); with vocab_size=None it keeps the configured file if any.
    tokenizer = cfg.model.data_preprocessor.get('tokenizer') or {}
    vocab_file = tokenizer.get('vocab_file') if isinstance(tokenizer,
                                                           dict) else tokenizer
    size = backbone.get('vocab_size')
    if size or not vocab_file or not osp.exists(str(vocab_file)):
        cfg.model.data_preprocessor.tokenizer = dict(
            vocab_file=write_throwaway_vocab(
                osp.join(work_dir, 'vocab'), size or 30522))
    return cfg


def img_size_of(cfg: Config, args: argparse.Namespace) -> int:
    size = args.img_size or cfg.model.backbone.get('img_size', 256)
    return size if isinstance(size, int) else size[0]


def text_len_of(cfg: Config, args: argparse.Namespace) -> int:
    return args.text_len or cfg.model.backbone.get('text_len', 128)


def caption_len_of(args: argparse.Namespace):
    if not args.caption_len:
        return None
    if len(args.caption_len) > 2:
        raise ValueError('--caption-len takes N or MIN MAX.')
    return args.caption_len[0] if len(args.caption_len) == 1 else tuple(
        args.caption_len)


def amp_dtype(device: torch.device) -> torch.dtype:
    if device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


class Variant:
    """One model (fast, baseline or compiled fast) with its optimizer."""

    def __init__(self, name: str, cfg: Config, device: torch.device,
                 state: Optional[dict], compile_backend: Optional[str],
                 train: bool) -> None:
        self.name = name
        self.cfg = cfg
        model_cfg = copy.deepcopy(cfg.model)
        if compile_backend:
            # The model's own switch (MVLT(compile=...)): forward compiled,
            # the preprocessor and the optimizer eager.
            model_cfg.compile = dict(backend=compile_backend)
        self.model = MODELS.build(model_cfg).to(device)
        if state is not None:
            self.model.load_state_dict(state)
        self.model.train(train)
        self.wrapper = build_wrapper(self.model, cfg) if train else None

    def train_step(self, data: dict) -> Dict[str, torch.Tensor]:
        return self.model.train_step(data, self.wrapper)


def register_modules(mode: str) -> None:
    """Register what the mode needs: the models only for train and
    retrieval, so that a bare GPU machine needs none of the data and
    evaluation packages (mmpretrain, pycocotools); everything for data."""
    if mode == 'data':
        register_all_modules()
        return
    import mvlt.models  # noqa: F401  (registers every model part)
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != 'mvlt':
        DefaultScope.get_instance(
            f'mvlt-benchmark-{time.time()}', scope_name='mvlt')


def build_wrapper(model: torch.nn.Module, cfg: Config):
    """MMEngine's optimizer wrapper of the config."""
    from mmengine.optim import build_optim_wrapper
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    try:
        return build_optim_wrapper(model, wrapper_cfg)
    except ImportError as error:
        # The mvlt scope imports mvlt.engine, whose evaluation part needs
        # mmpretrain (absent on a bare GPU image); MMEngine's own wrappers
        # do not. mvlt's NonFiniteSkipOptimWrapper only adds a norm check.
        wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
        if wrapper_cfg.get('type', 'OptimWrapper') not in ('OptimWrapper',
                                                           'AmpOptimWrapper'):
            print(f"optim_wrapper {wrapper_cfg.get('type')} needs mvlt.engine "
                  f'({error}); timing MMEngine\'s OptimWrapper instead.')
            wrapper_cfg.type = 'OptimWrapper'
        with DefaultScope.overwrite_default_scope('mmengine'):
            return build_optim_wrapper(model, wrapper_cfg)


def build_variants(cfg: Config, args: argparse.Namespace, device: torch.device,
                   train: bool) -> Dict[str, Variant]:
    """``fast`` (+ ``fast+compile``) and ``baseline``, same weights."""
    fast = Variant('fast', cfg, device, None, None, train)
    state = fast.model.state_dict()
    variants = {'fast': fast}
    if args.compile:
        variants['fast+compile'] = Variant('fast+compile', cfg, device, state,
                                           args.compile_backend, train)
    if not args.no_baseline:
        variants['baseline'] = Variant('baseline', baseline_config(cfg),
                                       device, state, None, train)
    return variants


def autocast_context(args: argparse.Namespace, device: torch.device):
    if not args.amp:
        return nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype(device))


def matmul_probe(device: torch.device, amp: bool) -> Callable[[], dict]:
    """Measure the fp32 (and on GPU bf16) matmul rates once per round.

    On CPU ``fp32`` is the better of ``torch.mm`` (MKL) and oneDNN's kernel,
    which the fast path's inference uses; both are kept.
    """

    def probe() -> dict:
        rates = dict(fp32_mm=matmul_rate(torch.float32, device))
        if device.type == 'cpu' and onednn_available():
            rates['fp32_onednn'] = matmul_rate(
                torch.float32, device, kernel='onednn')
        rates['fp32'] = max(rates.values())
        if device.type == 'cuda':
            rates['bf16'] = matmul_rate(torch.bfloat16, device)
        return rates

    return probe


def rate_key(args: argparse.Namespace, device: torch.device) -> str:
    """The matmul rate to compare against: bf16 for AMP on GPU, else fp32."""
    return 'bf16' if args.amp and device.type == 'cuda' else 'fp32'


# ------------------------------------------------------------- train mode
def synthetic_for(variant: Variant, cfg: Config, args: argparse.Namespace,
                  batch_size: int, img_size: int, text_len: int) -> dict:
    preprocessor = variant.model.data_preprocessor
    category = variant.model.heads['category'] \
        if 'category' in variant.model.heads else None
    return synthetic_samples(
        batch_size,
        img_size,
        text_len,
        vocab_size=preprocessor.vocab_size,
        caption_len=caption_len_of(args),
        num_categories=getattr(category, 'num_categories', 48),
        num_subcategories=getattr(category, 'num_subcategories', 122))


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


def run_train(cfg: Config, args: argparse.Namespace, device: torch.device,
              img_size: int, text_len: int, batch_size: int,
              memory: bool) -> Dict[str, Any]:
    """Interleaved training steps of every variant; figures per variant."""
    variants = build_variants(cfg, args, device, train=True)
    fast = variants['fast']
    data = synthetic_for(fast, cfg, args, batch_size, img_size, text_len)
    flops, pairs = train_flops(fast, data)
    baseline_flops = train_flops(variants['baseline'],
                                 data)[0] if 'baseline' in variants else None
    steps = {
        name: (lambda v=variant: v.train_step(data))
        for name, variant in variants.items()
    }
    times = interleaved_timings(
        steps,
        args.iters,
        args.warmup,
        device,
        between=matmul_probe(device, args.amp))
    result = figures(times, flops, pairs, batch_size, args, device, 'samples')
    if baseline_flops:
        result['baseline_flops_per_sample'] = baseline_flops / pairs
    result['settings'] = dict(
        batch_size=batch_size,
        pairs_per_step=pairs,
        img_size=img_size,
        text_len=text_len,
        amp=args.amp,
        compile=args.compile)
    if memory:
        result['memory'] = train_memory(variants, data, device)
        add_memory_ratio(result)
    return result


def figures(times: Dict[str, list], flops: int, pairs: int, samples: int,
            args: argparse.Namespace, device: torch.device,
            unit: str) -> Dict[str, Any]:
    """Throughput, FLOP rate and ratios from interleaved timings."""
    rates = times.pop('between')
    key = rate_key(args, device)
    out: Dict[str, Any] = dict(
        flops_per_sample=flops / pairs,
        flops_per_step=flops,
        matmul_gflops={
            name: summarize([r[name] for r in rates])
            for name in rates[0]
        },
        matmul_reference=key,
        raw_matmul_gflops=rates,
        variants={})
    for name, seconds in times.items():
        throughput = summarize([samples / s for s in seconds])
        entry = dict(
            seconds=summarize(seconds),
            raw_seconds=list(seconds),
            **{f'{unit}_per_s': throughput})
        if unit == 'samples':
            entry['pairs_per_s'] = summarize([pairs / s for s in seconds])
        # Only the fast path's FLOPs count: the baseline's extra work is
        # waste, so its "achieved" rate uses the same useful FLOPs.
        achieved = [flops / s / 1e9 for s in seconds]
        entry['achieved_gflops'] = summarize(achieved)
        entry['fraction_of_matmul'] = summarize(
            [a / r[key] for a, r in zip(achieved, rates)])
        out['variants'][name] = entry
    if 'baseline' in times:
        base = times['baseline']
        for name, seconds in times.items():
            if name != 'baseline':
                out['variants'][name]['speedup_vs_baseline'] = summarize(
                    [b / s for b, s in zip(base, seconds)])
    return out


def train_memory(variants: Dict[str, Variant], data: dict,
                 device: torch.device) -> Dict[str, Any]:
    """Peak tensor memory of one training step per variant (not compiled
    ones: the tracker does not follow compiled graphs)."""
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


# --------------------------------------------------------- retrieval mode
def run_retrieval(cfg: Config, args: argparse.Namespace,
                  device: torch.device) -> Dict[str, Any]:
    """ITM scores of synthetic pair batches, every variant interleaved."""
    variants = build_variants(cfg, args, device, train=False)
    fast = variants['fast']
    batch_size = args.batch_size or 32
    img_size, text_len = img_size_of(cfg, args), text_len_of(cfg, args)
    data = synthetic_for(fast, cfg, args, batch_size, img_size, text_len)
    # Decoded and normalised once, reused by every call (as the retrieval
    # loop reuses an image across its 101 pairings).
    batch = fast.model.data_preprocessor(data, False)['inputs']

    def score(variant: Variant) -> Callable[[], torch.Tensor]:

        def run():
            with torch.inference_mode(), autocast_context(args, device):
                return variant.model.predict_outputs(
                    batch, tasks=('itm', ))['itm_score']

        return run

    steps = {name: score(v) for name, v in variants.items()}
    with torch.inference_mode():
        flops, _ = count_flops(steps['fast'])
        baseline_flops = count_flops(
            steps['baseline'])[0] if 'baseline' in steps else None
    scores = {name: step().float().cpu() for name, step in steps.items()}
    times = interleaved_timings(
        steps,
        args.iters,
        args.warmup,
        device,
        between=matmul_probe(device, args.amp))
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
            times = interleaved_timings({name: run}, max(2, args.iters // 2),
                                        1, device)
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


# -------------------------------------------------------------- data mode
def run_data(cfg: Config, args: argparse.Namespace,
             device: torch.device) -> Dict[str, Any]:
    """The training data loader alone: samples/s after its workers start."""
    from mmengine.runner import Runner
    if cfg.get('train_dataloader') is None:
        raise KeyError(
            f'{args.config} has no train_dataloader; data mode needs a data '
            'config, e.g. configs/mvlt/pretrain_fashiongen.py with '
            'configs/_base_/datasets/synthetic_fashiongen.py (make the data '
            'with tools/misc/make_synthetic_fashiongen.py).')
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    if args.batch_size:
        loader_cfg.batch_size = args.batch_size
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batch_size = loader_cfg.batch_size
    total = args.warmup + args.iters
    # Workers prefetch a few batches, so single batches come in bursts: the
    # figure is batches x size over the whole timed span.
    stamps: List[float] = []
    seen = 0
    while seen < total:
        for _ in loader:
            seen += 1
            if seen >= args.warmup:
                stamps.append(time.perf_counter())
            if seen >= total:
                break
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    result: Dict[str, Any] = dict(
        settings=dict(
            batch_size=batch_size,
            batches=len(gaps),
            num_workers=loader_cfg.get('num_workers', 0),
            dataset=loader_cfg.dataset.get('type')),
        data_samples_per_s=dict(
            overall=batch_size * len(gaps) / (stamps[-1] - stamps[0]),
            per_batch=summarize([batch_size / g for g in gaps])))
    if not args.no_model_compare:
        img_size = pipeline_img_size(loader_cfg) or img_size_of(cfg, args)
        text_len = text_len_of(cfg, args)
        model_args = copy.copy(args)
        model_args.no_baseline, model_args.compile = True, False
        model = run_train(
            cfg,
            model_args,
            device,
            img_size,
            text_len,
            batch_size,
            memory=False)
        model_rate = model['variants']['fast']['samples_per_s']['median']
        result['model_train_samples_per_s'] = model_rate
        result['model_settings'] = model['settings']
        result['data_vs_model'] = \
            result['data_samples_per_s']['overall'] / model_rate
    return result


def pipeline_img_size(loader_cfg) -> Optional[int]:
    for step in loader_cfg.dataset.get('pipeline', []):
        if step.get('type') == 'Resize' and step.get('scale'):
            scale = step['scale']
            return scale if isinstance(scale, int) else scale[0]
    return None


# ------------------------------------------------------------------ sweep
def run_sweep(cfg: Config, args: argparse.Namespace,
              device: torch.device) -> Dict[str, Any]:
    """Fast-path training figures over image sizes, then caption lengths."""
    batch_size = args.batch_size or 8
    sizes = sorted(args.sweep_img_sizes)
    base_img = 256 if 256 in sizes else sizes[0]
    base_len = text_len_of(cfg, args)
    points = [(s, base_len) for s in sizes] + [
        (base_img, n) for n in args.sweep_text_lens if n != base_len
    ]
    # One fast model per point, all timed round by round like the variants
    # of a train run: a change of machine load hits every point alike, so
    # the fitted exponent compares like with like.
    steps, flops, names = {}, {}, []
    for img_size, text_len in points:
        point_cfg = copy.deepcopy(cfg)
        point_cfg.model.backbone.img_size = img_size
        point_cfg.model.backbone.text_len = max(
            text_len, point_cfg.model.backbone.get('text_len', 128))
        variant = Variant('fast', point_cfg, device, None, None, True)
        data = synthetic_for(variant, point_cfg, args, batch_size, img_size,
                             text_len)
        name = f'{img_size}px_L{text_len}'
        names.append(name)
        flops[name] = train_flops(variant, data)
        steps[name] = (lambda v=variant, d=data: v.train_step(d))
    times = interleaved_timings(
        steps,
        args.iters,
        args.warmup,
        device,
        between=matmul_probe(device, args.amp))
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


# ----------------------------------------------------------------- report
def print_report(mode: str, result: Dict[str, Any]) -> None:
    unit = 'pairs' if mode == 'retrieval' else 'samples'
    print(f"\n== {mode}: {result.get('settings')}")
    line = (f"FLOPs per {unit[:-1]}: fast path "
            f"{result['flops_per_sample'] / 1e9:.2f} GFLOP")
    if 'baseline_flops_per_sample' in result:
        base = result['baseline_flops_per_sample']
        line += (f", baseline {base / 1e9:.2f} GFLOP (x"
                 f"{base / result['flops_per_sample']:.2f})")
    print(line)
    for key, rate in result['matmul_gflops'].items():
        print(f"matmul {key}: {rate['median']:.1f} GFLOP/s "
              f"(min {rate['min']:.1f}, max {rate['max']:.1f})")
    for name, v in result['variants'].items():
        thr = v[f'{unit}_per_s']
        line = (f"{name:>13}: {thr['median']:8.2f} {unit}/s "
                f"[p25 {thr['p25']:.2f}, p75 {thr['p75']:.2f}, "
                f"min {thr['min']:.2f}, max {thr['max']:.2f}]  "
                f"{v['achieved_gflops']['median']:.1f} GFLOP/s = "
                f"{100 * v['fraction_of_matmul']['median']:.0f} % of matmul")
        if 'speedup_vs_baseline' in v:
            line += (f"  x{v['speedup_vs_baseline']['median']:.2f} vs "
                     'baseline')
        print(line)
    for name, mem in result.get('memory', {}).items():
        print(f"{name:>13}: step peak {mem['peak_bytes'] / 2**20:.0f} MiB, "
              f"+{mem['increase_bytes'] / 2**20:.0f} MiB above its start")
    if 'memory_ratio_fast_vs_baseline' in result:
        ratio = result['memory_ratio_fast_vs_baseline']
        print(f"memory fast / baseline: {ratio['increase']:.2f} (step "
              f"increase), {ratio['peak']:.2f} (absolute peak)")
    if 'max_abs_score_difference' in result:
        print('max |score - fast score|:', result['max_abs_score_difference'])
    if 'coco5k_estimate' in result:
        est = result['coco5k_estimate']
        print(f"unimodal passes/s: {result['unimodal_items_per_s']}")
        print(f"COCO 5K on {est['gpus']} such devices: exact "
              f"{est['exact_hours']:.2f} h ({est['exact_pairs']:,} pairs); "
              f"re-ranking top {est['top_k']}: {est['rerank_minutes']:.2f} "
              'min')


def process_peak_rss() -> Optional[int]:
    """Resident-set high-water mark of this process in bytes (Linux)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def write_json(result: Dict[str, Any], args: argparse.Namespace) -> None:
    path = args.out
    if path is None and os.environ.get('OUT'):
        suffix = '_sweep' if args.sweep else ''
        suffix += '_compile' if args.compile else ''
        suffix += '_amp' if args.amp else ''
        path = osp.join(os.environ['OUT'],
                        f'benchmark_{args.mode}{suffix}.json')
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'figures written to {path}')


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
    register_modules(args.mode)
    # The optimizer builder logs every parameter's settings at INFO.
    if not MMLogger.check_instance_created('mvlt_benchmark'):
        MMLogger.get_instance('mvlt_benchmark', log_level='WARNING')
    device = torch.device(
        args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    with tempfile.TemporaryDirectory(prefix='mvlt_benchmark_') as work_dir:
        cfg = prepare_config(args, work_dir)
        if args.amp and device.type == 'cpu' and args.mode == 'train':
            raise ValueError(
                '--amp trains through MMEngine\'s AmpOptimWrapper, which '
                'needs a GPU; on CPU use --amp with --mode retrieval only.')
        if args.amp:
            enable_amp(cfg)
        tuned = device.type == 'cpu' and not args.no_malloc_tuning and \
            tune_cpu_allocator()
        memory = not args.no_memory
        result: Dict[str, Any] = dict(
            config=args.config,
            mode=args.mode,
            device=str(device),
            machine=machine_info(device),
            malloc_tuned=bool(tuned))
        if args.sweep:
            print('sweep (fast path, training steps):')
            result['sweep'] = run_sweep(cfg, args, device)
            sweep = result['sweep']
            if 'exponent' in sweep:
                low, high = sweep['exponent_sizes']
                print(f'growth exponent of time in visual tokens: {low}->'
                      f"{high} px {sweep['exponent']:.3f}, all sizes "
                      f"{sweep['exponent_all_sizes']:.3f}")
        elif args.mode == 'train':
            result.update(
                run_train(cfg, args, device, img_size_of(cfg, args),
                          text_len_of(cfg, args), args.batch_size or 8,
                          memory))
            print_report('train', result)
        elif args.mode == 'retrieval':
            result.update(run_retrieval(cfg, args, device))
            print_report('retrieval', result)
        else:
            result.update(run_data(cfg, args, device))
            print(f"\n== data: {result['settings']}")
            print(f"data pipeline: "
                  f"{result['data_samples_per_s']['overall']:.1f} samples/s "
                  f"over {result['settings']['batches']} batches")
            if 'data_vs_model' in result:
                print(f"model training (fast path): "
                      f"{result['model_train_samples_per_s']:.2f} samples/s;"
                      f" data / model = {result['data_vs_model']:.1f}x")
        rss = process_peak_rss()
        if rss:
            # Whole process, all modes together (libraries, every model
            # built, the allocator's cache): context for the tensor peaks.
            result['process_peak_rss_bytes'] = rss
        print(f"machine: {result['machine']}; malloc tuned: {tuned}")
    write_json(result, args)
    return result


if __name__ == '__main__':
    main()
