"""Test results as a table like the paper's, and as JSON in the work dir."""
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mvlt.registry import HOOKS

#: Metrics printed with 4 decimals (values in [0, 1]); others get 2.
_FINE = ('macro-F', 'ssim_masked', 'ssim_whole')


def split_metric_name(name: str) -> Tuple[str, str]:
    """``'retrieval/fashiongen-101/test/TIR/R@1'`` -> (``'TIR
    (fashiongen-101, test)'``, ``'R@1'``); ``'mig/psnr_whole'`` -> (``'MIG'``,
    ``'psnr_whole'``)."""
    parts = name.split('/')
    if len(parts) >= 3:
        context = parts[1:-2]
        task = parts[-2]
        return (f"{task} ({', '.join(context)})" if context else task,
                parts[-1])
    if len(parts) == 2:
        return parts[0].upper(), parts[1]
    return 'metrics', name


def metrics_table(metrics: Dict[str, float]) -> Tuple[List[str], list]:
    """Rows = tasks, columns = metrics, in first-seen order.

    Returns:
        tuple: column names, and rows ``[task, {column: value}]``.
    """
    rows: 'OrderedDict[str, Dict[str, float]]' = OrderedDict()
    columns: List[str] = []
    for name, value in metrics.items():
        if not isinstance(value, (int, float)):
            continue
        task, column = split_metric_name(name)
        rows.setdefault(task, OrderedDict())[column] = float(value)
        if column not in columns:
            columns.append(column)
    return columns, [[task, values] for task, values in rows.items()]


def format_table(metrics: Dict[str, float]) -> str:
    """The metrics as a Markdown table (rows = tasks, columns = metrics)."""
    columns, rows = metrics_table(metrics)
    if not rows:
        return '(no metrics)'

    def cell(column: str, values: dict) -> str:
        if column not in values:
            return ''
        value = values[column]
        if column == 'ignored':
            return f'{int(value)}'
        return f'{value:.4f}' if column in _FINE else f'{value:.2f}'

    header = ['task'] + columns
    body = [[task] + [cell(c, values) for c in columns]
            for task, values in rows]
    widths = [
        max(len(r[i]) for r in [header] + body) for i in range(len(header))
    ]

    def line(cells: List[str]) -> str:
        return '| ' + ' | '.join(c.ljust(w)
                                 for c, w in zip(cells, widths)) + ' |'

    rule = '|' + '|'.join('-' * (w + 2) for w in widths) + '|'
    return '\n'.join([line(header), rule] + [line(r) for r in body])


@HOOKS.register_module()
class TestResultsHook(Hook):
    """Print the test metrics as a table and write them as JSON.

    After the test epoch (rank 0): logs a table whose rows are the tasks
    (TIR / ITR with their protocol and split, M-CR / S-CR, MIG) and whose
    columns are the metrics, and writes ``<work_dir>/<file_name>`` and a copy
    in the run's log folder, holding the metrics, the table, the config file
    and the checkpoint.

    Args:
        file_name (str): Name of the JSON file.
    """

    priority = 'LOW'

    def __init__(self, file_name: str = 'test_metrics.json') -> None:
        self.file_name = file_name
        self.last_path: Optional[str] = None

    @master_only
    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        metrics = dict(metrics or {})
        table = format_table(metrics)
        print_log('Test results:\n' + table, logger='current')
        columns, rows = metrics_table(metrics)
        record = OrderedDict(
            config=getattr(runner.cfg, 'filename', None),
            checkpoint=runner.cfg.get('load_from'),
            metrics=metrics,
            table=OrderedDict(columns=columns, rows=rows))
        for folder in (runner.work_dir, runner.log_dir):
            path = osp.join(folder, self.file_name)
            with open(path, 'w', encoding='utf-8') as f:
                json.dump(record, f, indent=2)
        self.last_path = osp.join(runner.work_dir, self.file_name)
