"""Speed benchmark of MVLT: a config, and optionally its baseline, side by
side.

    python tools/analysis_tools/benchmark.py CONFIG [--baseline CONFIG]
        [--mode train|retrieval|data|e2e|embed] [--batch-size N] [--img-size S]
        [--text-len L] [--caption-len MIN [MAX]] [--iters N] [--warmup N]
        [--amp] [--compile [--compile-backend B] [--compile-mode M]]
        [--sweep] [--workers N ...] [--target-rate R] [--clock wall|process]
        [--device cpu|cuda]
        [--no-memory] [--out FILE.json] [--cfg-options KEY=VALUE ...]

``train`` times whole training steps (``model.train_step``: data
preprocessor, forward, backward, optimizer) of the config's model (``fast``),
of the ``--baseline`` config's model (e.g.
``configs/mvlt/benchmark/mvlt_pvt-tiny_256px_baseline.py``, the
straightforward implementation) and with ``--compile`` of the config's model
compiled (``model.compile``), all with the same weights, alternating step by
step so that all see the same machine load. ``retrieval`` times ITM scoring
of image-caption pair batches. ``data`` times the config's training loader
alone, in one process and with ``--workers N``; ``e2e`` runs that loader
feeding the training step and reports end-to-end samples/s and the share of
the time spent waiting for data. The train and retrieval modes feed
synthetic inputs and a made-up vocabulary of the configured size when the
configured one is missing, so they need nothing on disk. ``embed`` times the
ITC image and caption towers against CLIP ViT-B/32 (open_clip, random
weights), with PyTorch and with ONNX Runtime, on the CPU
(``benchmark_modes/embed.py``).

Figures: median, quartiles and range of samples/s (train) or pairs/s
(retrieval), per-round ratios, peak tensor memory of a step, FLOPs per sample
(``torch.utils.flop_counter``), the achieved GFLOP/s against the machine's
matmul rate measured in the same rounds. ``--sweep`` repeats the training
figures over image sizes and caption lengths and fits the growth exponent of
time in the number of visual tokens. Everything is also written as JSON
(``--out``, or ``$OUT/benchmark_<mode>.json`` if ``$OUT`` is set).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from typing import Any, Dict, List, Optional

import torch
from mmengine.logging import MMLogger

from mvlt.utils import register_all_modules
from mvlt.utils.allocator import tune_cpu_allocator
from mvlt.utils.cli import add_cfg_options
from mvlt.utils.config import enable_amp

# The per-mode modules lie next to this file (run as a script or loaded by
# path, the folder is not a package on sys.path otherwise).
if osp.dirname(osp.abspath(__file__)) not in sys.path:
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_modes import common, data, report  # noqa: E402
from benchmark_modes.embed import print_embed, run_embed  # noqa: E402
from benchmark_modes.retrieval import run_retrieval  # noqa: E402
from benchmark_modes.train import run_sweep, run_train  # noqa: E402

SWEEP_IMG_SIZES = (192, 256, 384, 512)
SWEEP_TEXT_LENS = (64, 128, 256)
MODES = ('train', 'retrieval', 'data', 'e2e', 'embed')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='MVLT speed benchmark (a config vs its baseline)')
    parser.add_argument('config', help='model config (with optim_wrapper)')
    parser.add_argument(
        '--baseline',
        help='config of the model to compare with, built with the same '
        'overrides (e.g. configs/mvlt/benchmark/'
        'mvlt_pvt-tiny_256px_baseline.py); train / retrieval modes')
    parser.add_argument('--mode', choices=MODES, default='train')
    parser.add_argument(
        '--batch-size',
        type=int,
        help='images per training step (default 8) or pairs per retrieval '
        'batch (default 32); data / e2e modes: the config\'s')
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
        help='timed rounds (data / e2e: timed batches, e.g. 100)')
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
        help='also time the config\'s model compiled (model.compile; '
        'e2e: time it instead)')
    parser.add_argument(
        '--compile-backend',
        default='inductor',
        help='torch.compile backend of --compile')
    parser.add_argument(
        '--compile-mode',
        help='torch.compile mode of --compile (e.g. reduce-overhead: CUDA '
        'graphs)')
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
    parser.add_argument(
        '--workers',
        type=int,
        nargs='+',
        help='data / e2e: loader worker processes, one run each (data mode '
        'always runs num_workers=0 first; default: the config\'s)')
    parser.add_argument(
        '--target-rate',
        type=float,
        help='data mode: samples/s the loader must feed (e.g. a GPU\'s '
        'training rate); reports the loader processes that takes')
    parser.add_argument(
        '--clock',
        choices=['wall', 'process'],
        default='wall',
        help='train / retrieval timings: wall time, or CPU time of this '
        'process (with OMP_NUM_THREADS=1 on a CPU shared with other jobs: '
        'the work of a step without the time the others take)')
    parser.add_argument('--device', help='cpu or cuda (default: cuda if any)')
    parser.add_argument(
        '--no-baseline',
        action='store_true',
        help='skip the --baseline config (time the config alone)')
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
    add_cfg_options(
        parser, help='override settings of both configs, '
        'key=value')
    return parser.parse_args(argv)


def run_mode(args: argparse.Namespace, device: torch.device,
             work_dir: str) -> Dict[str, Any]:
    """Figures of the mode ``args`` asks for (printed as they come)."""
    cfg = common.prepare_config(args.config, args, work_dir)
    baseline = None
    if args.baseline and not args.no_baseline and args.mode in ('train',
                                                                'retrieval'):
        baseline = common.prepare_config(args.baseline, args, work_dir)
    if args.amp:
        enable_amp(cfg)
        if baseline is not None:
            enable_amp(baseline)
    result: Dict[str, Any] = dict(
        baseline=args.baseline if baseline is not None else None,
        baseline_changes=common.baseline_changes(cfg, baseline))
    if args.sweep:
        print('sweep (training steps of the config):')
        result['sweep'] = sweep = run_sweep(cfg, args, device)
        if 'exponent' in sweep:
            low, high = sweep['exponent_sizes']
            print(f'growth exponent of time in visual tokens: {low}->{high} '
                  f"px {sweep['exponent']:.3f}, all sizes "
                  f"{sweep['exponent_all_sizes']:.3f}")
    elif args.mode == 'train':
        result.update(
            run_train(cfg, baseline, args, device,
                      common.img_size_of(cfg, args),
                      common.text_len_of(cfg, args), args.batch_size or 8,
                      not args.no_memory))
        report.print_report('train', result)
    elif args.mode == 'retrieval':
        result.update(run_retrieval(cfg, baseline, args, device))
        report.print_report('retrieval', result)
    elif args.mode == 'embed':
        result.update(run_embed(cfg, args, device, work_dir))
        print_embed(result)
    elif args.mode == 'data':
        result.update(data.run_data(cfg, args, device))
        print(f"\n== data: {result['settings']}")
        data.print_data(result)
    else:
        print(f'\n== e2e ({args.config}):')
        result.update(data.run_e2e(cfg, args, device))
    return result


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
    register_all_modules()
    # The optimizer builder logs every parameter's settings at INFO.
    if not MMLogger.check_instance_created('mvlt_benchmark'):
        MMLogger.get_instance('mvlt_benchmark', log_level='WARNING')
    device = torch.device(
        args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    tuned = device.type == 'cpu' and not args.no_malloc_tuning and \
        tune_cpu_allocator()
    result: Dict[str, Any] = dict(
        config=args.config,
        mode=args.mode,
        device=str(device),
        machine=common.machine_info(device),
        malloc_tuned=bool(tuned))
    with tempfile.TemporaryDirectory(prefix='mvlt_benchmark_') as work_dir:
        result.update(run_mode(args, device, work_dir))
    rss = report.process_peak_rss()
    if rss:
        # Whole process, all modes together (libraries, every model built,
        # the allocator's cache): context for the tensor peaks.
        result['process_peak_rss_bytes'] = rss
    print(f"machine: {result['machine']}; malloc tuned: {tuned}")
    report.write_json(result, args)
    return result


if __name__ == '__main__':
    main()
