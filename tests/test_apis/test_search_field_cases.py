"""The search page against what strangers send: spoofed ``Host`` and
``Origin`` headers (DNS rebinding) at a running page, and queries of
invisible characters or of words the vocabulary lacks."""
import copy
import http.client
import json
import os.path as osp

import cv2
import pytest
from search_test_utils import NANO_ITC, running_search_app, save_model

from conftest import draw_product, load_tool
from mvlt.apis.search_page import text_results_html
from mvlt.utils import register_all_modules

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')
pytest.importorskip('gradio', reason='gradio (requirements/optional.txt)')
register_all_modules()

QUERY = 'a red circle on a white background'
INVISIBLE = ['\u200b', '\ufeff', '\x00', '\u200b\ufeff \x00\u200d']
UNKNOWN = ['\U0001F600\U0001F389', '\u6f22\u5b57 \U0001F600']


@pytest.fixture(scope='module')
def model_files(nano_config, tmp_path_factory) -> tuple:
    """(config, checkpoint) of the nano model with a random ITC head."""
    root = str(tmp_path_factory.mktemp('nano_itc'))
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = NANO_ITC
    return save_model(cfg, root, 'nano_itc')


@pytest.fixture(scope='module')
def page(model_files, nano_data, tmp_path_factory):
    """The search app (tools/demo/search_app.py) serving the nano gallery on
    a loopback port, as a user starts it."""
    root = str(tmp_path_factory.mktemp('guarded_page'))
    config, checkpoint = model_files
    out = osp.join(root, 'index')
    load_tool('misc/build_search_index.py').main([
        config, checkpoint, '--gallery',
        osp.join(nano_data['root'], 'test.jsonl'), '--image-root',
        osp.join(nano_data['root'], 'images'), '--out', out
    ])
    with running_search_app(out, root) as port:
        yield port


def _request(port: int,
             method: str,
             path: str,
             headers: dict,
             body: bytes = None) -> tuple:
    """(status, headers, body) of one request with exactly these headers."""
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    connection.putrequest(
        method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in headers.items():
        connection.putheader(key, value)
    if body is not None:
        connection.putheader('Content-Length', str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    out = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return out


def _search_path(query: str) -> str:
    from urllib.parse import quote
    return f'/api/search?q={quote(query)}&k=3&rerank=0'


@pytest.mark.slow
def test_spoofed_host_is_refused(page):
    png = cv2.imencode('.png', draw_product('red', 'circle', 0))[1].tobytes()
    evil = {'Host': 'rebind.evil.example'}
    for method, path, body in (('GET', _search_path(QUERY), None),
                               ('GET', '/', None), ('GET', '/api/info', None),
                               ('POST', '/api/image?k=3', png)):
        status, headers, _ = _request(page, method, path, evil, body)
        assert status == 400, (method, path, status)
        assert 'access-control-allow-origin' not in {
            k.lower()
            for k in headers
        }
    for host in (f'127.0.0.1:{page}', f'localhost:{page}'):
        status, _, body = _request(page, 'GET', _search_path(QUERY),
                                   {'Host': host})
        assert status == 200 and json.loads(body)['results']


@pytest.mark.slow
def test_foreign_origin_gets_no_cors(page):
    own = f'127.0.0.1:{page}'
    for origin in ('http://rebind.evil.example', 'null',
                   f'http://evil.example:{page}'):
        for method, path in (('GET', _search_path(QUERY)),
                             ('OPTIONS', '/gradio_api/info'), ('GET',
                                                               '/config')):
            headers = {'Host': own, 'Origin': origin}
            if method == 'OPTIONS':
                headers['Access-Control-Request-Method'] = 'GET'
            status, got, _ = _request(page, method, path, headers)
            assert status == 403, (origin, path, status)
            assert 'access-control-allow-origin' not in {
                k.lower()
                for k in got
            }, (origin, path, got)
    # The page's own origin (its fetches carry it) is served.
    status, _, body = _request(page, 'GET', _search_path(QUERY), {
        'Host': own,
        'Origin': f'http://{own}'
    })
    assert status == 200 and json.loads(body)['results']


@pytest.mark.slow
@pytest.mark.parametrize('query', INVISIBLE)
def test_invisible_query_is_refused_as_empty(page, query):
    status, _, body = _request(page, 'GET', _search_path(query),
                               {'Host': f'127.0.0.1:{page}'})
    assert status == 400
    assert 'empty' in json.loads(body)['error']


@pytest.mark.slow
@pytest.mark.parametrize('query', UNKNOWN)
def test_all_unknown_query_is_answered_with_a_warning(page, query):
    status, _, body = _request(page, 'GET', _search_path(query),
                               {'Host': f'127.0.0.1:{page}'})
    answer = json.loads(body)
    assert status == 200 and answer['results']
    assert '[UNK]' in answer['warning']
    status, _, body = _request(page, 'GET', _search_path(QUERY),
                               {'Host': f'127.0.0.1:{page}'})
    assert 'warning' not in json.loads(body)


def test_page_shows_the_unknown_words_warning():
    """The page's text search puts the warning above the results."""
    from mvlt.apis.query_check import UNKNOWN_WORDS_WARNING
    shown = text_results_html(
        dict(results=[], timing={}, warning=UNKNOWN_WORDS_WARNING))
    assert 'class="mvlt-warning"' in shown and 'every word piece is [UNK]' \
        in shown
    assert 'mvlt-warning' not in text_results_html(
        dict(results=[], timing={}))


def test_truncated_jpeg_in_a_folder_gallery_index(model_files, tmp_path):
    """The index build names the truncated file and says what to do; with
    --on-bad-sample skip it indexes the rest, and the index reopens."""
    from mvlt.apis import SearchIndex
    folder = tmp_path / 'shop'
    folder.mkdir()
    for index, colour in enumerate(('red', 'blue', 'green')):
        data = cv2.imencode('.jpg', draw_product(colour, 'circle',
                                                 0))[1].tobytes()
        if index == 1:
            data = data[:len(data) // 2]
        (folder / f'{colour}_circle.jpg').write_bytes(data)
    tool = load_tool('misc/build_search_index.py')
    config, checkpoint = model_files
    out = str(tmp_path / 'index')
    args = [config, checkpoint, '--gallery', str(folder), '--out', out]
    with pytest.raises(SystemExit) as stop:
        tool.main(args)
    message = str(stop.value.code)
    assert 'blue_circle.jpg' in message and 'truncated' in message
    assert '--on-bad-sample skip' in message
    meta = tool.main(args + ['--on-bad-sample', 'skip'])
    assert meta['num_items'] == 2
    assert meta['gallery']['exclude'] == ['blue_circle.jpg']
    index = SearchIndex(out)
    assert [item['product_id']
            for item in index.items] == ['green_circle', 'red_circle']
