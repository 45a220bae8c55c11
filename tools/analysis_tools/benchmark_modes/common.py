"""Set-up shared by the benchmark modes: configs, variants, figures."""
import argparse
import copy
import os.path as osp
import platform
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mvlt.models.layers import onednn_available
from mvlt.registry import MODELS
from mvlt.utils.config import amp_precision, load_config
from .measure import (config_changes, interleaved_timings, matmul_rate,
                      summarize, synthetic_samples, write_throwaway_vocab)


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


def prepare_config(path: str, args: argparse.Namespace,
                   work_dir: str) -> Config:
    """Load a model config and make it runnable without downloads.

    ``--img-size`` / ``--text-len`` / ``--cfg-options`` apply; the init
    checkpoint is dropped (speed does not depend on it) and the model gets
    a vocabulary of its configured size: the configured file's entries
    first when it exists (so real captions tokenise as in training), then
    made-up word pieces (:func:`.measure.write_throwaway_vocab`).

    Raises:
        KeyError: The config has no ``model``.
    """
    cfg = load_config(path, args.cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'{path} has no model; pass a model config (for '
                       'example configs/mvlt/benchmark/mvlt_pvt-tiny_256px.py'
                       ').')
    if args.mode != 'data' and 'optim_wrapper' not in cfg:
        cfg.optim_wrapper = dict(
            type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))
    if args.img_size:
        set_model_setting(cfg.model, 'img_size', args.img_size)
    if args.text_len:
        set_model_setting(cfg.model, 'text_len', args.text_len)
    backbone = cfg.model.backbone
    backbone.pop('init_cfg', None)
    cfg.model.pop('init_cfg', None)
    tokenizer = cfg.model.data_preprocessor.get('tokenizer') or {}
    vocab_file = tokenizer.get('vocab_file') if isinstance(tokenizer,
                                                           dict) else tokenizer
    known = vocab_file if vocab_file and osp.exists(str(vocab_file)) else None
    size = backbone.get('vocab_size')
    if size or known is None:
        # One file per (size, source): configs that agree share the path.
        name = f'vocab_{size or 30522}_{abs(hash(osp.abspath(known)))}' \
            if known else f'vocab_{size or 30522}'
        cfg.model.data_preprocessor.tokenizer = dict(
            vocab_file=write_throwaway_vocab(
                osp.join(work_dir, name), size or 30522, known))
    return cfg


def set_model_setting(model: Config, key: str, value: int) -> None:
    """Set ``img_size`` / ``text_len`` where a model config states it: the
    data preprocessor, and the backbone when it states its own."""
    model.data_preprocessor[key] = value
    if model.backbone.get(key) is not None:
        model.backbone[key] = value


def model_setting(model: Config, key: str, default: int) -> int:
    """``img_size`` / ``text_len`` of a model config: the backbone's, else
    (None: taken from there) the data preprocessor's."""
    value = model.backbone.get(key)
    if value is None:
        value = model.data_preprocessor.get(key)
    return default if value is None else value


def img_size_of(cfg: Config, args: argparse.Namespace) -> int:
    size = args.img_size or model_setting(cfg.model, 'img_size', 256)
    return size if isinstance(size, int) else size[0]


def text_len_of(cfg: Config, args: argparse.Namespace) -> int:
    return args.text_len or model_setting(cfg.model, 'text_len', 128)


def caption_len_of(args: argparse.Namespace):
    """``--caption-len``: None (full length), N, or (MIN, MAX)."""
    if not args.caption_len:
        return None
    if len(args.caption_len) > 2:
        raise ValueError('--caption-len takes N or MIN MAX.')
    return args.caption_len[0] if len(args.caption_len) == 1 else tuple(
        args.caption_len)


def amp_dtype(device: torch.device) -> torch.dtype:
    """The dtype ``--amp`` trains in on ``device`` (as ``tools/train.py``)."""
    return getattr(torch, amp_precision(device.type))


def autocast_context(args: argparse.Namespace, device: torch.device):
    if not args.amp:
        return nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype(device))


class Variant:
    """One model of a run (``fast``, ``baseline``, ``fast+compile``, ...)
    with its optimizer wrapper, built from its config.

    Args:
        name (str): Label in the figures.
        cfg (Config): Full config (model + optim_wrapper).
        device (torch.device): Where to run.
        state (dict, optional): Weights to load (the first variant's), so
            that every variant computes the same numbers.
        train (bool): Training mode and an optimizer wrapper.
        compile (dict, optional): ``model.compile`` options to set.
    """

    def __init__(self,
                 name: str,
                 cfg: Config,
                 device: torch.device,
                 state: Optional[dict] = None,
                 train: bool = True,
                 compile: Optional[dict] = None) -> None:
        self.name = name
        self.cfg = cfg
        model_cfg = copy.deepcopy(cfg.model)
        if compile is not None:
            model_cfg.compile = compile
        self.model = MODELS.build(model_cfg).to(device)
        if state is not None:
            self.model.load_state_dict(state)
        self.model.train(train)
        self.wrapper = build_optim_wrapper(
            self.model, copy.deepcopy(cfg.optim_wrapper)) if train else None

    def train_step(self, data: dict) -> Dict[str, torch.Tensor]:
        return self.model.train_step(data, self.wrapper)


def compile_options(args: argparse.Namespace) -> dict:
    """``model.compile`` of the ``--compile`` variant."""
    options = dict(backend=args.compile_backend)
    if args.compile_mode:
        options['mode'] = args.compile_mode
    return options


def build_variants(cfg: Config,
                   baseline: Optional[Config],
                   args: argparse.Namespace,
                   device: torch.device,
                   train: bool,
                   compiled: bool = True) -> Dict[str, Variant]:
    """``fast`` (the config), ``fast+compile`` (with ``--compile``) and
    ``baseline`` (with ``--baseline``), all with the same weights."""
    fast = Variant('fast', cfg, device, None, train)
    state = fast.model.state_dict()
    variants = {'fast': fast}
    if args.compile and compiled:
        variants['fast+compile'] = Variant('fast+compile', cfg, device, state,
                                           train, compile_options(args))
    if baseline is not None:
        variants['baseline'] = Variant('baseline', baseline, device, state,
                                       train)
    return variants


def baseline_changes(cfg: Config, baseline: Optional[Config]) -> dict:
    """The model / optimizer settings the baseline config changes."""
    if baseline is None:
        return {}
    keys = ('model', 'optim_wrapper')
    return config_changes({k: cfg.get(k)
                           for k in keys}, {k: baseline.get(k)
                                            for k in keys})


def synthetic_for(variant: Variant, args: argparse.Namespace, batch_size: int,
                  img_size: int, text_len: int) -> dict:
    """A synthetic collated batch for ``variant``'s vocabulary and heads."""
    preprocessor = variant.model.data_preprocessor
    heads = variant.model.heads
    category = heads['category'] if 'category' in heads else None
    return synthetic_samples(
        batch_size,
        img_size,
        text_len,
        vocab_size=preprocessor.vocab_size,
        caption_len=caption_len_of(args),
        num_categories=getattr(category, 'num_categories', 48),
        num_subcategories=getattr(category, 'num_subcategories', 122))


def matmul_probe(device: torch.device,
                 clock: str = 'wall') -> Callable[[], dict]:
    """Measure the fp32 (and on GPU bf16) matmul rates once per round.

    On CPU ``fp32`` is the better of ``torch.mm`` (MKL) and oneDNN's
    kernel, which the fast path uses; both are kept.
    """

    def probe() -> dict:
        rates = dict(fp32_mm=matmul_rate(torch.float32, device, clock=clock))
        if device.type == 'cpu' and onednn_available():
            rates['fp32_onednn'] = matmul_rate(
                torch.float32, device, kernel='onednn', clock=clock)
        rates['fp32'] = max(rates.values())
        if device.type == 'cuda':
            rates['bf16'] = matmul_rate(torch.bfloat16, device, clock=clock)
        return rates

    return probe


def timed_rounds(steps: Dict[str, Callable[[], Any]], args: argparse.Namespace,
                 device: torch.device) -> Dict[str, list]:
    """Time ``steps`` round by round (``--iters`` / ``--warmup`` /
    ``--clock``) with the matmul rate probed between rounds, under
    ``'between'``: :func:`benchmark_modes.measure.interleaved_timings`."""
    return interleaved_timings(
        steps,
        args.iters,
        args.warmup,
        device,
        between=matmul_probe(device, args.clock),
        clock=args.clock)


def rate_key(args: argparse.Namespace, device: torch.device) -> str:
    """The matmul rate to compare against: bf16 for AMP on GPU, else fp32."""
    return 'bf16' if args.amp and device.type == 'cuda' else 'fp32'


def figures(times: Dict[str, list], flops: int, pairs: int, samples: int,
            args: argparse.Namespace, device: torch.device,
            unit: str) -> Dict[str, Any]:
    """Throughput, FLOP rate and per-round ratios from interleaved timings.

    Only the fast path's FLOPs count for every variant: the baseline's
    extra work is waste, so its "achieved" rate uses the same useful FLOPs.
    """
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
        entry = dict(
            seconds=summarize(seconds),
            raw_seconds=list(seconds),
            **{f'{unit}_per_s': summarize([samples / s for s in seconds])})
        if unit == 'samples':
            entry['pairs_per_s'] = summarize([pairs / s for s in seconds])
        achieved = [flops / s / 1e9 for s in seconds]
        entry['achieved_gflops'] = summarize(achieved)
        entry['fraction_of_matmul'] = summarize(
            [a / r[key] for a, r in zip(achieved, rates)])
        out['variants'][name] = entry
    for name, seconds in times.items():
        for other in ('baseline', 'fast'):
            if other in times and name not in (other, 'baseline'):
                out['variants'][name][f'speedup_vs_{other}'] = summarize(
                    [b / s for b, s in zip(times[other], seconds)])
    return out


def workers_of(args: argparse.Namespace, default: Optional[int]) -> List[int]:
    """``--workers N ...``, or the config's ``num_workers``."""
    if args.workers:
        return list(args.workers)
    return [default or 0]


def pipeline_img_size(steps: Sequence[dict]) -> Optional[int]:
    """The side a ``Resize`` step of a pipeline gives, if any."""
    for step in steps:
        if step.get('type') == 'Resize' and step.get('scale'):
            scale = step['scale']
            return scale if isinstance(scale, int) else scale[0]
    return None
