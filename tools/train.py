"""Train an MVLT model with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse

from mvlt.engine import build_runner
from mvlt.utils import run_reporting_failures, setup_distributed
from mvlt.utils.cli import (add_launcher_arguments, config_parser,
                            load_args_config, parse_launcher_args)
from mvlt.utils.config import enable_amp


def parse_args() -> argparse.Namespace:
    parser = config_parser('Train an MVLT model', 'train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: bf16 on a CPU and on GPUs that have it, '
        'else fp16 with loss scaling; refused where the device has neither')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='skip validation during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the actual / base batch size')
    add_launcher_arguments(parser)
    return parse_launcher_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_args_config(args)
    if args.amp:
        print(f'--amp: training in {enable_amp(cfg)}')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True
    setup_distributed(cfg, args.launcher)
    # A failing rank names itself and ends at once; the others follow.
    run_reporting_failures(lambda: build_runner(cfg).train())


if __name__ == '__main__':
    main()
