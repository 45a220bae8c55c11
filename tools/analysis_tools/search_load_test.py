"""Load test of the catalogue-search JSON API on loopback.

    python tools/analysis_tools/search_load_test.py INDEX_DIR \
        [--workers 2] [--clients 16] [--queries 2000] [--distinct 200] \
        [--topk 10] [--rerank-k 0] [--rounds 1] [--deadline-s 1800] \
        [--out FILE.json]

Starts ``tools/demo/search_app.py INDEX_DIR --workers N`` on a free port of
127.0.0.1 (nothing else is contacted), asks each of ``--distinct`` queries
(the index's own captions) once in turn for the sequential answers, then
sends ``--queries`` requests from ``--clients`` threads at once and checks
that every answer equals the sequential one. Reports errors, mismatches,
p50 / p99 latency, and the resident memory of the server's processes before
and after the load (it must not grow with the number of queries). Every
request has a timeout and the whole run a deadline; the server is stopped
at the end.

With ``--rounds R`` > 1 the load is sent R times: the first round warms the
workers up (allocator pools, caches, lazily loaded code), and the resident
memory after each later round shows whether memory grows with the number
of queries (``rss_growth_mb``: after the last round minus after the first)
or only warmed up (``rss_warmup_mb``: after the first round minus before).
The latency figures are those of the rounds after the warm-up.
"""
import argparse
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO)
from mvlt.apis.item_store import index_captions  # noqa: E402
from mvlt.apis.serving import add_query_options  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('index_dir')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--clients', type=int, default=16)
    add_query_options(parser, queries=2000, rerank_k=0)
    parser.add_argument('--distinct', type=int, default=200)
    parser.add_argument(
        '--rounds',
        type=int,
        default=1,
        help='send the --queries this many times (the first warms up; '
        'memory is read after each)')
    parser.add_argument('--request-timeout-s', type=float, default=120)
    parser.add_argument('--deadline-s', type=float, default=1800)
    parser.add_argument('--out')
    return parser.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """Resident memory (MiB) of a process and all its descendants."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f'/proc/{current}/status') as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1]) / 1024
            for task in os.listdir(f'/proc/{current}/task'):
                with open(f'/proc/{current}/task/{task}/children') as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def get_json(url: str, timeout: float) -> dict:
    """GET ``url`` and decode its JSON (raises on a non-200 status)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def start_server(args: argparse.Namespace, port: int, log) -> tuple:
    """The server process and its base URL, once it answers /api/info."""
    process = subprocess.Popen([
        sys.executable,
        osp.join(REPO, 'tools', 'demo', 'search_app.py'), args.index_dir,
        '--port',
        str(port), '--workers',
        str(args.workers)
    ],
                               stdout=log,
                               stderr=subprocess.STDOUT)
    base = f'http://127.0.0.1:{port}'
    until = time.monotonic() + min(args.deadline_s, 900)
    while time.monotonic() < until:
        if process.poll() is not None:
            raise SystemExit(f'The server exited ({process.returncode}); '
                             f'see {log.name}')
        try:
            get_json(base + '/api/info', 5)
            return process, base
        except OSError:
            time.sleep(1)
    process.kill()
    raise SystemExit('The server did not start in time; see ' + log.name)


def load_round(plan: List[str], expected: dict, one, clients: int) -> dict:
    """Send the queries of ``plan`` from ``clients`` threads at once and
    compare each answer with ``expected`` (the sequential one).

    Returns:
        dict: ``errors`` (count), ``first_errors``, ``mismatches``,
        ``latencies`` (ms of the answered queries), ``p50_ms``, ``p99_ms``
        and ``queries_per_second``.
    """
    errors, mismatches, latencies = [], 0, []
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(one, text) for text in plan]
        for text, future in zip(plan, futures):
            try:
                answer, ms = future.result()
            except Exception as err:  # noqa: BLE001 - counted, reported
                errors.append(f'{type(err).__name__}: {err}'[:200])
                continue
            latencies.append(ms)
            mismatches += answer != expected[text]
    seconds = time.perf_counter() - start
    return dict(
        errors=len(errors),
        first_errors=errors[:5],
        mismatches=mismatches,
        latencies=latencies,
        p50_ms=float(np.percentile(latencies, 50)) if latencies else None,
        p99_ms=float(np.percentile(latencies, 99)) if latencies else None,
        queries_per_second=len(latencies) / seconds)


def run(args: argparse.Namespace) -> dict:
    """Start the server, load it, stop it; return the figures."""
    texts = index_captions(args.index_dir)[:args.distinct]
    start = time.monotonic()
    log = open(osp.join(args.index_dir, 'load_test_server.log'), 'w')
    process, base = start_server(args, _free_port(), log)
    startup = time.monotonic() - start

    def ask(text: str) -> tuple:
        query = urllib.parse.urlencode(
            dict(q=text, k=args.topk, rerank=args.rerank_k))
        begin = time.perf_counter()
        out = get_json(f'{base}/api/search?{query}', args.request_timeout_s)
        return ([(r['row'], round(r['score'], 5)) for r in out['results']],
                1000 * (time.perf_counter() - begin))

    try:
        expected = {text: ask(text)[0] for text in texts}
        rss_before = tree_rss_mb(process.pid)
        plan = [texts[i % len(texts)] for i in range(args.queries)]
        deadline = start + args.deadline_s

        def one(text: str):
            if time.monotonic() > deadline:
                raise TimeoutError('deadline passed')
            return ask(text)

        rounds = []
        for _ in range(max(1, args.rounds)):
            rounds.append(load_round(plan, expected, one, args.clients))
            rounds[-1].update(
                rss_mb_after=round(tree_rss_mb(process.pid), 1),
                load_average=os.getloadavg()[0])
        metrics = urllib.request.urlopen(
            base + '/metrics', timeout=30).read().decode()
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    search_counter = 'mvlt_search_requests_total{endpoint="/api/search"'
    counted = sum(
        float(line.rsplit(' ', 1)[1]) for line in metrics.splitlines()
        if line.startswith(search_counter))
    measured = rounds[1:] or rounds  # the first of several warms up
    latencies = [ms for r in measured for ms in r.pop('latencies')]
    rounds[0].pop('latencies', None)
    rss_after = [r['rss_mb_after'] for r in rounds]
    return dict(
        workers=args.workers,
        clients=args.clients,
        queries=args.queries,
        rounds=rounds,
        distinct=len(texts),
        errors=sum(r['errors'] for r in rounds),
        first_errors=[e for r in rounds for e in r['first_errors']][:5],
        mismatches=sum(r['mismatches'] for r in rounds),
        p50_ms=float(np.percentile(latencies, 50)) if latencies else None,
        p99_ms=float(np.percentile(latencies, 99)) if latencies else None,
        queries_per_second=float(
            np.mean([r['queries_per_second'] for r in measured])),
        rss_mb_before=round(rss_before, 1),
        rss_mb_after=rss_after[-1],
        rss_warmup_mb=round(rss_after[0] - rss_before, 1),
        rss_growth_mb=round(rss_after[-1] - rss_after[0], 1),
        server_startup_s=round(startup, 2),
        metrics_search_requests=counted,
        load_average=os.getloadavg(),
        cpu_count=os.cpu_count())


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the load test; print and return its figures."""
    args = parse_args(argv)
    result = run(args)
    print(f"{result['queries']} queries from {result['clients']} clients, "
          f"{result['workers']} worker(s): {result['errors']} errors, "
          f"{result['mismatches']} answers unlike the sequential ones; p50 "
          f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
          f"{result['queries_per_second']:.1f} queries/s; server memory "
          f"{result['rss_mb_before']:.0f} -> {result['rss_mb_after']:.0f} MiB"
          f" (load average {result['load_average'][0]:.1f})")
    if len(result['rounds']) > 1:
        print('  per round (the first warms up): ' + '; '.join(
            f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
            f"{r['errors']} errors, {r['mismatches']} mismatches, memory "
            f"after {r['rss_mb_after']:.0f} MiB" for r in result['rounds']) +
              f"; warm-up {result['rss_warmup_mb']:+.1f} MiB, growth after "
              f"it {result['rss_growth_mb']:+.1f} MiB")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
