"""Monitoring counters of the catalogue-search service, in the Prometheus
text format (as clip-retrieval's back end exposes them), by the official
``prometheus_client`` library.

Requests and their latency are counted per endpoint and status. With
several worker processes (``search_app.py --workers N``) every worker
writes its counters to ``$PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``
sums them (prometheus_client's documented multi-process mode); the app sets
that folder up before the workers start.
"""
import os
import time
from typing import Sequence, Tuple

#: Latency buckets (s): a text query takes milliseconds with ITC alone and
#: up to seconds with ITM re-ranking on a CPU.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)


def _client():
    try:
        import prometheus_client
    except ImportError:
        raise ImportError('/metrics needs prometheus_client: pip install -r '
                          'requirements/optional.txt') from None
    return prometheus_client


class SearchMetrics:
    """Request counters and a latency histogram in a registry of their own
    (two apps in one process, as in tests, do not collide).

    Args:
        multiprocess_dir: Folder of prometheus_client's multi-process mode
            (default ``$PROMETHEUS_MULTIPROC_DIR``; None: one process).
    """

    def __init__(self, multiprocess_dir: str = None) -> None:
        client = _client()
        self.multiprocess_dir = multiprocess_dir or os.environ.get(
            'PROMETHEUS_MULTIPROC_DIR')
        self.registry = client.CollectorRegistry(auto_describe=True)
        self.requests = client.Counter(
            'mvlt_search_requests',
            'Requests served, by endpoint and HTTP status.',
            ['endpoint', 'status'],
            registry=None if self.multiprocess_dir else self.registry)
        self.latency = client.Histogram(
            'mvlt_search_request_seconds',
            'Time from request to response, by endpoint.', ['endpoint'],
            buckets=LATENCY_BUCKETS,
            registry=None if self.multiprocess_dir else self.registry)
        if not self.multiprocess_dir:
            client.ProcessCollector(registry=self.registry)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one request to ``endpoint`` that took ``seconds``."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> Tuple[bytes, str]:
        """The exposition text and its content type (every worker's
        counters summed in multi-process mode)."""
        client = _client()
        registry = self.registry
        if self.multiprocess_dir:
            from prometheus_client import multiprocess
            registry = client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, self.multiprocess_dir)
        return client.generate_latest(registry), client.CONTENT_TYPE_LATEST


#: Endpoints counted by name (every other path as 'other').
SEARCH_ENDPOINTS = ('/api/search', '/api/image', '/api/similar',
                    '/api/composed', '/api/info', '/metrics')


def add_metrics(app,
                endpoints: Sequence[str] = SEARCH_ENDPOINTS) -> SearchMetrics:
    """Count every request of a FastAPI ``app`` (``endpoints`` by path, the
    rest as ``'other'``, so the label set stays bounded whatever clients
    send) and serve the counters at ``GET /metrics``."""
    from fastapi import Request
    from fastapi.responses import Response
    metrics = SearchMetrics()

    @app.middleware('http')
    async def count_requests(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        path = request.url.path
        metrics.observe(path if path in endpoints else 'other',
                        response.status_code,
                        time.perf_counter() - start)
        return response

    @app.get('/metrics')
    def prometheus_metrics():
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return metrics
