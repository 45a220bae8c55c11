"""Evaluate an MVLT checkpoint with MMEngine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]

Prints the metrics as a table (rows = tasks, columns = metrics) and writes
them to <work_dir>/test_metrics.json; --show-dir saves figures (retrieval
top-5 with the positive marked, MIG masked / reconstructed / original).
"""
import argparse
import os

from mmengine.config import DictAction

from mvlt.engine import build_runner
from mvlt.utils import (register_all_modules, run_reporting_failures,
                        setup_distributed)
from mvlt.utils.config import load_config, prepare_test_config, set_work_dir


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test an MVLT model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save logs and metrics')
    parser.add_argument('--out', help='dump predictions to this pickle file')
    parser.add_argument(
        '--show-dir', help='save visualisations into this directory')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    set_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint
    prepare_test_config(cfg, args.config, args.show_dir)
    setup_distributed(cfg, args.launcher)

    def run() -> None:
        runner = build_runner(cfg)
        if args.out:
            from mmengine.evaluator import DumpResults
            runner.test_evaluator.metrics.append(
                DumpResults(out_file_path=args.out))
        runner.test()

    # A failing rank names itself and ends at once; the others follow.
    run_reporting_failures(run)


if __name__ == '__main__':
    main()
