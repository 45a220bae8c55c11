"""Catalogue search: galleries, index building, the JSON endpoints and the
checks on mismatched indexes and bad input."""
import copy
import json
import os
import os.path as osp
import shutil
import struct
import sys
import zlib

import cv2
import numpy as np
import pytest
from search_test_utils import build_nano_index, save_model

from conftest import draw_product, load_tool
from mvlt.apis import (CatalogueSearch, IndexMismatchError, MVLTInferencer,
                       SearchIndex, open_gallery)
from mvlt.apis.ann_files import describe_ann
from mvlt.apis.ranking_choice import describe_ranking
from mvlt.apis.search_app import build_app
from mvlt.apis.search_page import products_html
from mvlt.utils import register_all_modules

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')
register_all_modules()

QUERY = 'a red circle on a white background'


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (a decompression bomb's
    signature: a tiny file, a huge image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack(
            '>I', zlib.crc32(kind + data))

    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
            chunk(b'IDAT', zlib.compress(b'\0' * 1024)) + chunk(b'IEND', b''))


@pytest.fixture(scope='module')
def built(nano_config, nano_data, tmp_path_factory):
    """The nano model with a random ITC head and its index of the nano
    gallery (16 images of 8 products), built by the tool."""
    return build_nano_index(nano_config, nano_data,
                            str(tmp_path_factory.mktemp('search')))


@pytest.fixture(scope='module')
def client(built, tmp_path_factory):
    """The search app's FastAPI app (page included) under a test client."""
    pytest.importorskip('gradio', reason='gradio (requirements/optional.txt)')
    from fastapi.testclient import TestClient
    uploads = str(tmp_path_factory.mktemp('uploads'))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('GRADIO_TEMP_DIR', uploads)
        app = build_app(
            built['search'], max_upload_mb=1.0, max_pixels=4_000_000)
        # The page answers only its own Host names (loopback by default).
        with TestClient(app, base_url='http://127.0.0.1') as test_client:
            yield test_client


def test_galleries(synthetic_fashiongen, nano_data, tmp_path):
    fashiongen = open_gallery(synthetic_fashiongen['validation'])
    assert fashiongen.kind == 'fashiongen'
    assert len(fashiongen) == synthetic_fashiongen['num_images']['validation']
    row = fashiongen.rows[0]
    assert row['caption'].endswith('.') and row['category']
    assert fashiongen.read(0).shape == (64, 64, 3)
    assert fashiongen.content_hash() == fashiongen.content_hash()
    # A folder: captions from NAME.txt or the file name, category = folder.
    folder = tmp_path / 'shop'
    (folder / 'TROUSERS').mkdir(parents=True)
    cv2.imwrite(
        str(folder / 'TROUSERS' / 'long_red_trousers.png'),
        draw_product('red', 'square', 0))
    cv2.imwrite(
        str(folder / 'blue_dot.png'), draw_product('blue', 'circle', 0))
    (folder / 'blue_dot.txt').write_text('a blue dot\n')
    shop = open_gallery(str(folder))
    assert [(r['caption'], r['category'])
            for r in shop.rows] == [('long red trousers', 'TROUSERS'),
                                    ('a blue dot', '')]
    before = shop.content_hash()
    (folder / 'blue_dot.txt').write_text('a dark blue dot\n')
    assert open_gallery(str(folder)).content_hash() != before
    with pytest.raises(FileNotFoundError, match='does not exist'):
        open_gallery(str(tmp_path / 'none.jsonl'))
    (tmp_path / 'x.csv').write_text('')
    with pytest.raises(ValueError, match='prefix it'):
        open_gallery(str(tmp_path / 'x.csv'))


def test_ranking_equals_the_inferencer(built, client):
    assert built['meta']['num_items'] == 16 and built['meta']['mode'] == 'itc'
    reference = MVLTInferencer(
        built['config'], built['checkpoint'], batch_size=16)
    for topk, rerank_k in ((5, 4), (10, 3), (16, 16)):
        response = client.get(
            '/api/search',
            params=dict(q=QUERY, k=topk, rerank=rerank_k, group='photo'))
        assert response.status_code == 200
        results = response.json()['results']
        expected = reference.rank_images(QUERY, built['paths'], topk, rerank_k)
        assert [r['row'] for r in results] == [h['index'] for h in expected]
        assert [r['by'] for r in results] == [h['by'] for h in expected]
        np.testing.assert_allclose([r['score'] for r in results],
                                   [h['score'] for h in expected],
                                   rtol=0,
                                   atol=1e-6)
        assert results[0]['thumbnail'] == f"thumbs/{results[0]['row']:06d}.jpg"
    # Image -> captions equals rank_captions over the distinct captions.
    with open(built['paths'][3], 'rb') as f:
        response = client.post(
            '/api/image',
            params=dict(group='photo', rerank=16),
            content=f.read())
    assert response.status_code == 200
    captions = built['search'].index.items.live_captions()
    expected = reference.rank_captions(
        built['paths'][3], captions, topk=10, rerank_k=16)
    got = response.json()
    assert [c['caption'] for c in got['captions']] == \
        [captions[h['index']] for h in expected]
    assert len(got['products']) == 10
    # More like this leaves the product's own photos out.
    similar = client.get(
        '/api/similar', params=dict(row=0, k=5, group='photo')).json()
    assert similar['source']['product_id'] == '0'
    assert len(similar['results']) == 5
    assert all(r['product_id'] != '0' for r in similar['results'])


def test_results_are_grouped_by_product(built, client):
    """Each product once, ranked by its best photo, its other photo on the
    card; ``group=photo`` gives the photo ranking it is made from."""
    for rerank_k in (0, 4):
        photos = client.get(
            '/api/search',
            params=dict(q=QUERY, k=16, rerank=rerank_k,
                        group='photo')).json()['results']
        products = client.get(
            '/api/search', params=dict(q=QUERY, k=5,
                                       rerank=rerank_k)).json()['results']
        firsts = {}
        for hit in photos:
            firsts.setdefault(hit['product_id'], hit)
        assert len(photos) == 16 and len(firsts) == 8
        assert [p['product_id'] for p in products] == list(firsts)[:5]
        for card in products:
            best = firsts[card['product_id']]
            assert (card['row'], card['score'], card['by']) == \
                (best['row'], best['score'], best['by'])
            assert len(card['photos']) == 2 and card['photos'][0] == \
                card['row'] and card['matched_photos'] in (1, 2)
            other = built['search'].index.items[card['photos'][1]]
            assert other['product_id'] == card['product_id']
    similar = client.get('/api/similar', params=dict(row=0, k=10)).json()
    assert len({r['product_id'] for r in similar['results']}) == 7 == len(
        similar['results'])
    with open(built['paths'][3], 'rb') as f:
        got = client.post('/api/image', content=f.read()).json()
    assert len(got['products']) == 8
    page = products_html(products)
    assert page.count('class="mvlt-photo"') == 5
    response = client.get('/api/search', params=dict(q=QUERY, group='x'))
    assert response.status_code == 400 and 'group' in response.json()['error']


def test_index_records_ann_recall_and_ranking(built, client, tmp_path):
    """meta.json holds the measured recall of the (exact) ANN table and the
    ITC / ITM / fused comparison; the page's default k' follows it."""
    meta = built['meta']
    assert meta['ann']['images']['factory'] == 'Flat'
    assert meta['ann']['images']['recall_at_10'] == 1.0
    ranking = meta['ranking']
    assert set(ranking['recall']) == {'itc', 'itm', 'fused'}
    assert ranking['queries'] == 8 and ranking['rerank_k'] == 16
    info = client.get('/api/info').json()
    assert info['ann']['images']['recall_at_10'] == 1.0
    assert info['ranking'] == ranking
    assert info['default_rerank_k'] == (0 if ranking['default'] == 'itc'
                                        else 16)
    assert 'recall@10 1.000' in describe_ann(meta)
    assert 'held-out captions' in describe_ranking(meta)
    # An index whose build measured the fused score best serves it.
    index = SearchIndex(built['out'])
    index.set_search_params({})  # nothing to change on an exact index
    with pytest.raises(ValueError, match='no search parameter'):
        index.set_search_params(dict(nprobe=4))
    index.meta = dict(index.meta, ranking=dict(ranking, default='fused'))
    fused = CatalogueSearch(index)
    plain = built['search'].search_text(QUERY, 4, 4, by_product=False)
    both = fused.search_text(QUERY, 4, 4, by_product=False)['results']
    itc = {r['row']: r['score'] for r in built['search'].search_text(
        QUERY, 16, 0, by_product=False)['results']}
    itm = {r['row']: r['score'] for r in plain['results']}
    for hit in both:
        assert hit['by'] == 'fused'
        assert hit['score'] == pytest.approx(
            itm[hit['row']] + itc[hit['row']], abs=1e-5)
    # A damaged table is refused when the index is opened.
    copy_dir = tmp_path / 'index'
    shutil.copytree(built['out'], copy_dir)
    with open(copy_dir / 'images.faiss', 'r+b') as f:
        f.truncate(100)
    with pytest.raises(RuntimeError, match='images.faiss is not a readable'
                       ) as err:
        SearchIndex(str(copy_dir))
    assert 'build_search_index.py' in str(err.value)


def test_image_query_is_prepared_once(built, monkeypatch):
    """An upload is resized to the model's input once per query, not once
    per re-ranked caption (its size must not multiply the ITM cost)."""
    search = built['search']
    inferencer = search.inferencer
    calls = []
    load = inferencer.load_images

    def counted(images):
        calls.append([np.asarray(i).shape for i in images])
        return load(images)

    image = cv2.imread(built['paths'][3])[..., ::-1]
    before = search.search_image(image, 5, 8)
    monkeypatch.setattr(inferencer, 'load_images', counted)
    after = search.search_image(image, 5, 8)
    assert calls == [[image.shape]]
    assert [c['caption'] for c in after['captions']] == \
        [c['caption'] for c in before['captions']]


def test_bad_input_gets_a_message(client):
    cases = [
        (client.get('/api/search', params=dict(q='   ')), 400, 'empty'),
        (client.get('/api/search',
                    params=dict(q='x' * 10_000)), 400, '10,000 characters'),
        (client.get('/api/search',
                    params=dict(q=QUERY, k=0)), 400, 'between 1 and 100'),
        (client.post('/api/image',
                     content=b'%PDF-1.4 not an image'), 400, 'not an image'),
        (client.post('/api/image', content=b''), 400, 'empty'),
        (client.post('/api/image', content=png_header(3000, 2000)), 400,
         '3000 x 2000 = 6,000,000 pixels'),
        (client.post('/api/image',
                     content=png_header(100_000,
                                        100_000)), 400, 'decompression bomb'),
        (client.post('/api/image',
                     content=b'\0' * (2**20 + 1)), 413, 'over 1.0 MiB'),
        (client.get('/api/similar', params=dict(row=99)), 400, 'rows 0 to 15'),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        assert words in response.json()['error']


def test_serves_only_its_own_files(client, built):
    thumb = client.get('/thumbs/000003.jpg')
    assert thumb.status_code == 200
    assert cv2.imdecode(
        np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR) is not None
    for path in ('/thumbs/..%2Fmeta.json', '/thumbs/999999.jpg'):
        assert client.get(path).status_code == 404
    outside = [
        '/etc/passwd',
        osp.join(built['out'], 'meta.json'), built['checkpoint'],
        osp.join(built['images'], 'red_circle_0.png')
    ]
    for path in outside:
        for route in ('/gradio_api/file=', '/file='):
            response = client.get(route + path)
            assert response.status_code == 403, path
            assert 'serves only' in response.json()['error']
    page = client.get('/')
    assert page.status_code == 200 and 'MVLT catalogue search' in page.text
    app = load_tool('demo/search_app.py')
    assert app.parse_args(['index']).host == '127.0.0.1'


@pytest.mark.slow
def test_mismatched_index_is_refused(built, tmp_path):
    # Other weights: the same model with another seed.
    _, other = save_model(built['cfg'], str(tmp_path), 'other', seed=1)
    with pytest.raises(IndexMismatchError) as err:
        SearchIndex(built['out'], checkpoint=other)
    message = str(err.value)
    assert 'sha256' in message and 'build_search_index.py' in message
    assert built['gallery'] in message
    tool = load_tool('demo/search_app.py')
    with pytest.raises(SystemExit, match='Refusing to serve'):
        tool.main([built['out'], '--checkpoint', other])
    # A changed gallery: a copy of the index over a copy of the gallery,
    # then one image redrawn.
    gallery = tmp_path / 'gallery'
    shutil.copytree(osp.dirname(built['gallery']), gallery)
    out = str(tmp_path / 'index')
    load_tool('misc/build_search_index.py').main([
        built['config'], built['checkpoint'], '--gallery',
        str(gallery / 'test.jsonl'), '--image-root',
        str(gallery / 'images'), '--out', out
    ])
    SearchIndex(out)
    cv2.imwrite(
        str(gallery / 'images' / 'red_circle_0.png'),
        draw_product('blue', 'square', 1))
    with pytest.raises(IndexMismatchError, match='gallery .* changed'):
        SearchIndex(out)
    # A stored config that no longer builds (a model argument was renamed).
    config = osp.join(out, 'config.py')
    with open(config) as f:
        text = f.read()
    with open(config, 'w') as f:
        f.write(
            text.replace("type='MVLTDataPreprocessor'",
                         "type='MVLTDataPreprocessor', no_such_argument=1"))
    with pytest.raises(IndexMismatchError, match='does not build a model'):
        SearchIndex(out, verify_gallery=False)
    os.remove(osp.join(out, 'meta.json'))
    with pytest.raises(FileNotFoundError, match='not a complete'):
        SearchIndex(out)


def test_without_itc_head(nano_config, nano_data, tmp_path, capsys):
    config, checkpoint = save_model(
        copy.deepcopy(nano_config), str(tmp_path), 'nano')
    images = osp.join(nano_data['root'], 'images')
    args = [
        config, checkpoint, '--gallery',
        osp.join(nano_data['root'], 'test.jsonl'), '--image-root', images,
        '--out',
        str(tmp_path / 'index')
    ]
    tool = load_tool('misc/build_search_index.py')
    with pytest.raises(SystemExit) as err:
        tool.main(args)
    assert err.value.code == tool.NO_ITC_EXIT
    message = capsys.readouterr().err
    assert 'has no ITC head' in message
    assert 's per text query for 16 images' in message
    assert '--exact-itm' in message
    meta = tool.main(args + ['--exact-itm'])
    assert meta['mode'] == 'exact-itm'
    search = CatalogueSearch(SearchIndex(str(tmp_path / 'index')))
    results = search.search_text(QUERY, topk=4, by_product=False)['results']
    paths = [osp.join(images, row['img_path']) for row in nano_data['rows']]
    expected = MVLTInferencer(
        config, checkpoint, batch_size=16).rank_images(QUERY, paths, 4)
    assert [r['row'] for r in results] == [h['index'] for h in expected]
    assert all(r['by'] == 'itm' for r in results)
    with pytest.raises(ValueError, match='needs ITC embeddings'):
        search.more_like(0)


def test_demo_summary_prints_the_page_command(built, tmp_path, monkeypatch,
                                              capsys):
    work = tmp_path / 'demo'
    metrics = {
        'retrieval': {
            f'synthetic-101/{d}/R@{k}': 70.0
            for d in ('TIR', 'ITR')
            for k in (1, 5, 10)
        },
        'retrieval_itm': {
            f'synthetic-101/{d}/R@{k}': 12.5
            for d in ('TIR', 'ITR')
            for k in (1, 5, 10)
        },
        'mig': {
            key: 1.0
            for key in ('psnr_masked', 'psnr_whole', 'ssim_masked',
                        'ssim_whole')
        }
    }
    for name, values in metrics.items():
        (work / name).mkdir(parents=True)
        (work / name /
         'test_metrics.json').write_text(json.dumps(dict(metrics=values)))
    summary = load_tool('demo/demo_summary.py')
    for index, words in ((built['out'],
                          'python tools/demo/search_app.py ' + built['out']),
                         ('', 'has no ITC head')):
        monkeypatch.setattr(sys, 'argv', [
            'demo_summary.py', '--work-dir',
            str(work), '--search-index', index
        ])
        summary.main()
        out = capsys.readouterr().out
        assert words in out
        # Both rankings are printed; the bar applies to the ITC one.
        assert 'ranked by ITC:\n    TIR  R@1  70.0' in out
        assert 'ranked by ITM (the paper):\n    TIR  R@1  12.5' in out
        assert 'R@5 >= 60 % in both directions (ITC): yes' in out


def test_benchmark_tool(built, tmp_path, capsys):
    tool = load_tool('analysis_tools/search_benchmark.py')
    result = tool.main([
        built['config'], built['checkpoint'], '--gallery', built['gallery'],
        '--image-root', built['images'], '--queries', '4', '--warmup', '1',
        '--rerank-k', '4', '--image-sizes', '64x64', '300x200',
        '--image-rounds', '1', '--work-dir',
        str(tmp_path)
    ])
    assert result['num_images'] == 16 and result['build_images_per_second'] > 0
    assert set(result['image_query_ms']) == {'64x64', '300x200'}
    assert all(ms > 0 for ms in result['image_query_ms'].values())
    for key in ('itc', 'itm', 'total'):
        figures = result['latency_ms'][key]
        assert 0 < figures['p50'] <= figures['p95'] <= figures['max']
    out = capsys.readouterr().out
    assert 'images/s' in out and 'ITM re-rank' in out
    assert (tmp_path / 'search_benchmark.json').is_file()
