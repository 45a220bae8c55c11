"""Evaluate an MVLT checkpoint with MMEngine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]

Prints the metrics as a table (rows = tasks, columns = metrics) and writes
them to <work_dir>/test_metrics.json; --show-dir saves figures (retrieval
top-5 with the positive marked, MIG masked / reconstructed / original).
"""
import argparse

from mvlt.engine import build_runner
from mvlt.utils import run_reporting_failures, setup_distributed
from mvlt.utils.cli import (add_launcher_arguments, config_parser,
                            load_args_config, parse_launcher_args)
from mvlt.utils.config import prepare_test_config


def parse_args() -> argparse.Namespace:
    parser = config_parser('Test an MVLT model', 'test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save logs and metrics')
    parser.add_argument('--out', help='dump predictions to this pickle file')
    parser.add_argument(
        '--show-dir', help='save visualisations into this directory')
    add_launcher_arguments(parser)
    return parse_launcher_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_args_config(args)
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
