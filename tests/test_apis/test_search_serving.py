"""The search service under load: /metrics, concurrent queries, a process
forked after a faiss search, several worker processes (the load-test
script)."""
import json
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest
from search_test_utils import build_nano_index

from conftest import load_tool
from mvlt.apis import CatalogueSearch, SearchIndex
from mvlt.apis.search_app import build_app
from mvlt.utils import register_all_modules

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')
register_all_modules()

QUERIES = ('a red circle on a white background', 'a blue square',
           'green triangle', 'a yellow dot')


@pytest.fixture(scope='module')
def built(nano_config, nano_data, tmp_path_factory):
    return build_nano_index(nano_config, nano_data,
                            str(tmp_path_factory.mktemp('serving')))


def _rows(out: dict) -> list:
    return [(r['row'], round(r['score'], 6)) for r in out['results']]


def _child_search(queue) -> None:
    """In a forked child: search with the index the parent opened."""
    queue.put(_rows(FORKED['search'].search_text(QUERIES[0], 5, 0)))


#: The parent's opened search, inherited by a forked child.
FORKED = {}


def _fork_after_search(index_dir: str, results) -> None:
    """A serving parent: open the index, search on two faiss threads, fork
    a child that searches; put (hung, exit code, child's rows, expected)."""
    import faiss
    register_all_modules()
    search = CatalogueSearch(SearchIndex(index_dir))
    expected = _rows(search.search_text(QUERIES[0], 5, 0))
    faiss.omp_set_num_threads(2)  # as a multi-threaded parent would
    search.index.image_index.search(search.index.image_embeds[:4], 3)
    FORKED['search'] = search
    context = multiprocessing.get_context('fork')
    queue = context.Queue()
    child = context.Process(target=_child_search, args=(queue, ))
    child.start()
    # A bound on a hang, not a speed limit: the search takes ms.
    child.join(300)
    hung = child.is_alive()
    if hung:
        child.kill()
    rows = None if hung else queue.get(timeout=10)
    results.put((hung, child.exitcode, rows, expected))


@pytest.mark.slow
def test_fork_after_search_answers(built):
    """faiss #5206: a child forked after faiss searched on several OpenMP
    threads hangs in its first search unless it runs faiss on one thread
    (SearchIndex registers that for every forked child).

    The serving parent is a freshly spawned process: threads that earlier
    tests left in the pytest process (servers, thread pools) could hold a
    lock at fork time, which is not what this test is about.
    """
    context = multiprocessing.get_context('spawn')
    results = context.Queue()
    parent = context.Process(
        target=_fork_after_search, args=(built['out'], results))
    parent.start()
    hung, exitcode, rows, expected = results.get(timeout=900)
    parent.join(60)
    assert not hung, 'the forked child hung in its first faiss search'
    assert exitcode == 0 and rows == expected


def test_concurrent_queries_equal_sequential(built):
    search = built['search']
    plan = [QUERIES[i % len(QUERIES)] for i in range(40)]
    expected = {q: _rows(search.search_text(q, 5, 2)) for q in QUERIES}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: _rows(search.search_text(q, 5, 2)),
                                plan))
    assert answers == [expected[q] for q in plan]


def test_query_tokenized_under_the_lock(built, monkeypatch):
    """The query's word-piece check runs under the search lock: a fast
    tokenizer's padding setting is shared state, and an unpadded call
    beside a padded one in another thread broke the padded one."""
    import mvlt.apis.catalogue_search as module
    search = built['search']
    judge = module.judge_word_pieces
    held = []

    def checked(tokenizer, query):
        held.append(search._lock.locked())
        return judge(tokenizer, query)

    monkeypatch.setattr(module, 'judge_word_pieces', checked)
    search.search_text(QUERIES[0], 5, 0)
    assert held == [True]


def test_metrics_in_prometheus_format(built, tmp_path):
    pytest.importorskip('prometheus_client')
    pytest.importorskip('gradio')
    from fastapi.testclient import TestClient
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('GRADIO_TEMP_DIR', str(tmp_path))
        app = build_app(built['search'])
        with TestClient(app, base_url='http://127.0.0.1') as client:
            for query in QUERIES[:3]:
                response = client.get('/api/search', params=dict(q=query))
                assert response.status_code == 200, response.text
            assert client.get('/api/search').status_code == 400
            client.get('/no/such/path')
            response = client.get('/metrics')
    assert response.status_code == 200
    assert response.headers['content-type'].startswith('text/plain')
    text = response.text
    assert 'mvlt_search_requests_total{endpoint="/api/search",status="200"}' \
        ' 3.0' in text
    assert 'mvlt_search_requests_total{endpoint="/api/search",status="400"}' \
        ' 1.0' in text
    assert 'endpoint="other"' in text and '/no/such/path' not in text
    assert 'mvlt_search_request_seconds_bucket{endpoint="/api/search",' \
        'le="0.005"}' in text
    assert 'process_resident_memory_bytes' in text


@pytest.mark.slow
def test_two_workers_under_load(built, tmp_path):
    """The load-test script: two spawned worker processes, 4 clients; every
    answer equals the sequential one, /metrics sums both workers."""
    pytest.importorskip('prometheus_client')
    pytest.importorskip('gradio')
    result = load_tool('analysis_tools/search_load_test.py').main([
        built['out'], '--workers', '2', '--clients', '4', '--queries', '40',
        '--distinct', '8', '--rounds', '2', '--out',
        str(tmp_path / 'load.json')
    ])
    assert result['errors'] == 0 and result['mismatches'] == 0
    # 8 sequential answers, then two rounds of 40 (the first warms up).
    assert result['metrics_search_requests'] >= 8 + 2 * 40
    assert result['p50_ms'] <= result['p99_ms']
    assert [r['errors'] for r in result['rounds']] == [0, 0]
    assert result['rss_mb_after'] == result['rounds'][-1]['rss_mb_after']
    assert result['rss_growth_mb'] == pytest.approx(
        result['rounds'][1]['rss_mb_after'] -
        result['rounds'][0]['rss_mb_after'],
        abs=0.11)
    assert json.loads((tmp_path / 'load.json').read_text())['rounds']
