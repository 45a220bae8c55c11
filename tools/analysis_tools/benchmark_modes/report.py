"""Printing and writing the benchmark's figures."""
import argparse
import json
import os
import os.path as osp
from typing import Any, Dict, Optional


def print_report(mode: str, result: Dict[str, Any]) -> None:
    """The figures of a train or retrieval run, one line per variant."""
    unit = 'pairs' if mode == 'retrieval' else 'samples'
    print(f"\n== {mode}: {result.get('settings')}")
    if result.get('baseline_changes'):
        print(f"baseline changes: {result['baseline_changes']}")
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
        for other in ('baseline', 'fast'):
            ratio = v.get(f'speedup_vs_{other}')
            if ratio:
                line += (f"  x{ratio['median']:.2f} vs {other} "
                         f"[{ratio['min']:.2f}-{ratio['max']:.2f}]")
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
    """``--out``, or ``$OUT/benchmark_<mode>[_sweep][_compile][_amp].json``
    when ``$OUT`` is set."""
    path = args.out
    if path is None and os.environ.get('OUT'):
        suffix = '_sweep' if args.sweep else ''
        suffix += '_compile' if args.compile else ''
        suffix += f'_{args.compile_mode}' if args.compile_mode else ''
        suffix += '_amp' if args.amp else ''
        path = osp.join(os.environ['OUT'],
                        f'benchmark_{args.mode}{suffix}.json')
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'figures written to {path}')
