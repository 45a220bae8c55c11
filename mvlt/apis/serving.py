"""Running the search service in one or several processes (uvicorn).

Several workers are started by uvicorn's supervisor, which uses spawn: no
worker inherits a forked copy of faiss's or torch's OpenMP state (a forked
faiss hangs: faiss issue #5206). Each worker calls an app factory that
rebuilds the app from the parent's command line; their Prometheus counters
are summed through a shared folder (:mod:`mvlt.apis.search_metrics`).
"""
import argparse
import json
import os
import tempfile
from typing import List

#: Environment variable carrying the command line to the workers.
ARGV_ENV = 'MVLT_SEARCH_ARGV'
#: Seconds a worker may take to answer uvicorn's health check. uvicorn's
#: default (5 s) is shorter than a spawned worker's imports (torch, faiss)
#: on a busy CPU: measured here, workers were killed and restarted in a loop
#: and never served.
WORKER_HEALTHCHECK_S = 120


def worker_argv() -> List[str]:
    """The command line the parent passed to this worker."""
    return json.loads(os.environ[ARGV_ENV])


def serve(app, host: str, port: int, workers: int, factory: str,
          app_dir: str, argv: List[str]) -> None:
    """Serve ``app`` in this process (``workers == 1``), or ``workers``
    spawned processes each calling ``factory`` (``'module:function'``,
    importable from ``app_dir``), until interrupted."""
    import uvicorn
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level='warning')
        return
    os.environ[ARGV_ENV] = json.dumps(list(argv))
    os.environ.setdefault('PROMETHEUS_MULTIPROC_DIR',
                          tempfile.mkdtemp(prefix='mvlt-metrics-'))
    uvicorn.run(
        factory,
        factory=True,
        app_dir=app_dir,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        host=host,
        port=port,
        log_level='warning')


def add_serving_args(parser: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--search-params`` of the search service."""
    parser.add_argument(
        '--workers',
        type=int,
        default=1,
        help='server processes (spawned; each opens the index)')
    parser.add_argument(
        '--search-params',
        default='',
        help='faiss search parameters, e.g. nprobe=128 (default: the ones '
        'the index build tuned, in meta.json)')


def add_query_options(parser: argparse.ArgumentParser, queries: int,
                      rerank_k: int) -> None:
    """Add ``--queries``, ``--topk`` and ``--rerank-k`` for the tools that
    send searches to an index (``search_benchmark.py``,
    ``search_load_test.py``): one name and meaning each, as the search
    page's ``--topk`` / ``--rerank-k``. ``--k`` and ``--rerank`` are kept
    as the load test's former names."""
    parser.add_argument(
        '--queries', type=int, default=queries, help='text queries sent')
    parser.add_argument(
        '--topk', '--k', type=int, default=10, help='results per query')
    parser.add_argument(
        '--rerank-k',
        '--rerank',
        type=int,
        default=rerank_k,
        help="ITC candidates re-ranked by ITM (k'; 0: the ITC order)")
