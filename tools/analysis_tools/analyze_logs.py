"""Plot training curves and time statistics from MMEngine's JSON logs.

    python tools/analysis_tools/analyze_logs.py plot_curve LOG [LOG ...]
        [--keys loss loss_mir] [--legend A B] [--title T] [--out curves.png]
    python tools/analysis_tools/analyze_logs.py cal_train_time LOG [LOG ...]

LOG is a JSON-lines scalar log written by MMEngine: ``scalars.json`` (or
``<timestamp>.json``) under ``WORK_DIR/<timestamp>/vis_data/``. Training
lines carry ``step`` (the iteration), ``loss*``, ``lr`` and ``time``;
evaluation lines carry their metrics (for example ``mig/psnr_whole``) and
``step`` = the epoch or iteration they ran after.
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np

Series = Dict[str, Tuple[List[float], List[float]]]


def load_scalars(path: str) -> List[dict]:
    """The JSON records of one log file, in order."""
    if not osp.isfile(path):
        raise SystemExit(f'Log file {path} does not exist; MMEngine writes '
                         'WORK_DIR/<timestamp>/vis_data/scalars.json.')
    records = []
    with open(path, encoding='utf-8') as f:
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise SystemExit(f'{path}:{line_no}: not a JSON line ({err}).')
    return records


def collect(records: List[dict], keys: List[str]) -> Series:
    """(steps, values) of each key over the records that hold it."""
    series: Series = {key: ([], []) for key in keys}
    for record in records:
        step = record.get('step', record.get('iter'))
        for key in keys:
            if key in record and step is not None:
                series[key][0].append(float(step))
                series[key][1].append(float(record[key]))
    return series


def plot_curve(args: argparse.Namespace) -> str:
    """Draw one line per (log, key) and save the figure; returns its path."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    legends = args.legend or []
    names = [
        f'{osp.basename(osp.dirname(osp.dirname(log)))}'
        if osp.basename(log) == 'scalars.json' else osp.basename(log)
        for log in args.logs
    ]
    if legends and len(legends) != len(args.logs) * len(args.keys):
        raise SystemExit(
            f'--legend needs {len(args.logs) * len(args.keys)} entries (one '
            'per log and key).')
    fig, ax = plt.subplots(figsize=(8, 5))
    # Accuracies (``*_acc``, in [0, 1]) get their own axis on the right, so
    # that they stay readable beside losses of any scale.
    ratio_ax = ax.twinx() if any(k.endswith('_acc')
                                 for k in args.keys) else None
    drawn = 0
    for log_index, log in enumerate(args.logs):
        series = collect(load_scalars(log), args.keys)
        for key_index, key in enumerate(args.keys):
            steps, values = series[key]
            if not steps:
                print(f'{log} has no {key!r}; skipped.')
                continue
            if legends:
                label = legends[log_index * len(args.keys) + key_index]
            else:
                label = f'{names[log_index]}: {key}' if len(
                    args.logs) > 1 else key
            target = ratio_ax if key.endswith('_acc') else ax
            target.plot(
                steps,
                values,
                label=label,
                linewidth=1,
                linestyle='--' if target is ratio_ax else '-',
                color=f'C{drawn % 10}')
            drawn += 1
    if not drawn:
        raise SystemExit(f'None of the logs has the keys {args.keys}.')
    ax.set_xlabel('iteration (training) / step (evaluation)')
    ax.set_title(args.title or ', '.join(args.keys))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if ratio_ax is not None:
        ratio_ax.set_ylim(0, 1)
        ratio_ax.set_ylabel('accuracy (dashed)')
        more = ratio_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize='small')
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    print(f'Saved {args.out}')
    return args.out


def cal_train_time(args: argparse.Namespace) -> Dict[str, float]:
    """Mean / slowest / fastest iteration time of each log."""
    stats = {}
    for log in args.logs:
        times = np.array(collect(load_scalars(log), ['time'])['time'][1])
        if times.size == 0:
            print(f'{log} has no "time" entries (training lines).')
            continue
        if not args.include_outliers and times.size > 1:
            times = times[1:]  # the first iteration includes set-up
        stats[log] = float(times.mean())
        print(f'{log}\n  iterations: {times.size}, mean {times.mean():.4f} '
              f's/iter, slowest {times.max():.4f}, fastest {times.min():.4f}, '
              f'std {times.std():.4f}')
    return stats


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Analyse MMEngine JSON logs')
    sub = parser.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='plot scalars against steps')
    plot.add_argument('logs', nargs='+', help='scalars.json file(s)')
    plot.add_argument(
        '--keys', nargs='+', default=['loss'], help='scalars to plot')
    plot.add_argument('--legend', nargs='+', help='one label per log x key')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--out', default='curves.png', help='output PNG')
    timing = sub.add_parser('cal_train_time', help='iteration time stats')
    timing.add_argument('logs', nargs='+', help='scalars.json file(s)')
    timing.add_argument(
        '--include-outliers',
        action='store_true',
        help='keep the first iteration')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.task == 'plot_curve':
        plot_curve(args)
    else:
        cal_train_time(args)


if __name__ == '__main__':
    main()
