"""Catalogue search by image and words ("like this, but in red"): the JSON
endpoint ranks as MVLT.embed_composed against the index's image embeddings,
and bad input gets the messages the other queries get."""
import copy
import os.path as osp

import numpy as np
import pytest
from search_test_utils import NANO_ITC, save_model
from test_search_index import png_header

from conftest import load_tool
from mvlt.apis import CatalogueSearch, SearchIndex
from mvlt.apis.search_app import build_app
from mvlt.models.utils import itc_similarity, rank_order
from mvlt.utils import register_all_modules

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')
pytest.importorskip('gradio', reason='gradio (requirements/optional.txt)')
register_all_modules()

#: A TGIR head sized for the nano model (T^4 / V^4 width 128) and NANO_ITC.
NANO_TGIR = dict(type='TGIRHead', in_channels=128, embed_dim=32)
CHANGE = 'is blue and square'


def _index(cfg, nano_data, root: str, name: str) -> CatalogueSearch:
    config, checkpoint = save_model(cfg, root, name)
    out = osp.join(root, name + '_index')
    load_tool('misc/build_search_index.py').main([
        config, checkpoint, '--gallery',
        osp.join(nano_data['root'], 'test.jsonl'), '--image-root',
        osp.join(nano_data['root'], 'images'), '--out', out, '--batch-size',
        '16'
    ])
    return CatalogueSearch(SearchIndex(out, batch_size=16))


@pytest.fixture(scope='module')
def clients(nano_config, nano_data, tmp_path_factory):
    """Test clients of an index whose model has a TGIR head and of one
    whose model has only ITC."""
    from fastapi.testclient import TestClient
    root = str(tmp_path_factory.mktemp('composed'))
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = NANO_ITC
    plain = _index(cfg, nano_data, root, 'itc_only')
    cfg.model.heads.tgir = NANO_TGIR
    composed = _index(cfg, nano_data, root, 'tgir')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('GRADIO_TEMP_DIR', root)
        apps = [
            build_app(s, max_upload_mb=1.0, max_pixels=4_000_000)
            for s in (composed, plain)
        ]
        url = 'http://127.0.0.1'  # the app answers only its own Host
        with TestClient(apps[0], base_url=url) as one, \
                TestClient(apps[1], base_url=url) as two:
            yield dict(composed=one, plain=two, search=composed)


@pytest.mark.slow
def test_image_and_words_query(clients, nano_data):
    path = osp.join(nano_data['root'], 'images',
                    nano_data['rows'][0]['img_path'])
    with open(path, 'rb') as f:
        body = f.read()
    response = clients['composed'].post(
        '/api/composed', params=dict(q=CHANGE, k=5), content=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got['query'] == CHANGE and len(got['results']) == 5
    assert {r['by'] for r in got['results']} == {'tgir'}
    # The same ranking as the model's scoring API over the index.
    search = clients['search']
    query = search.inferencer.embed_composed([path], [CHANGE])
    similarity = itc_similarity(query, search.index.image_embeds)
    expected = rank_order(similarity, k=5)[0]
    assert [r['row'] for r in got['results']] == expected.tolist()
    np.testing.assert_allclose([r['score'] for r in got['results']],
                               similarity[0, expected],
                               atol=1e-6)


@pytest.mark.slow
def test_bad_input_gets_the_same_messages(clients, nano_data):
    client = clients['composed']
    path = osp.join(nano_data['root'], 'images',
                    nano_data['rows'][0]['img_path'])
    with open(path, 'rb') as f:
        body = f.read()
    cases = [
        (client.post('/api/composed', params=dict(q='  '),
                     content=body), 400, 'The query is empty'),
        (client.post(
            '/api/composed', params=dict(q='\u200b\ufeff'),
            content=body), 400, 'no visible word'),
        (client.post('/api/composed', params=dict(q='x' * 5000),
                     content=body), 400, '5,000 characters'),
        (client.post(
            '/api/composed', params=dict(q=CHANGE, k=0),
            content=body), 400, 'between 1 and 100'),
        (client.post(
            '/api/composed', params=dict(q=CHANGE),
            content=b'%PDF-1.4'), 400, 'not an image'),
        (client.post('/api/composed', params=dict(q=CHANGE),
                     content=b''), 400, 'The upload is empty'),
        (client.post(
            '/api/composed',
            params=dict(q=CHANGE),
            content=png_header(3000,
                               2000)), 400, '3000 x 2000 = 6,000,000 pixels'),
        (client.post(
            '/api/composed',
            params=dict(q=CHANGE),
            content=b'\0' * (2**20 + 1)), 413, 'over 1.0 MiB'),
        (clients['plain'].post(
            '/api/composed', params=dict(q=CHANGE),
            content=body), 400, 'TGIR head'),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        assert words in response.json()['error'], response.text
    # The text query's endpoint says the same about the same text.
    text = client.get('/api/search', params=dict(q='  ')).json()['error']
    assert text == cases[0][0].json()['error']
