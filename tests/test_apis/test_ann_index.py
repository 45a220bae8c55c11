"""Approximate nearest-neighbour indexes: the choice of ``auto``, recall
tuned to a target on held-out queries, the memory budget, and files that
are refused when opened."""
import os

import numpy as np
import pytest

from conftest import load_tool
from mvlt.apis.ann_files import (EmbeddingRows, IndexFileError, open_ann,
                                 write_ann)
from mvlt.apis.ann_index import (EXACT_MAX_ITEMS, auto_factory,
                                 build_ann_index, estimate_bytes, exact_topk,
                                 import_faiss, parse_search_params,
                                 recall_at_k, served_topk, set_search_params,
                                 tune_search_params)

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')


def clustered(num: int, dim: int, seed: int) -> np.ndarray:
    """Points of an 8-dimensional mixture of 50 clusters, embedded in
    ``dim`` dimensions (the mixture depends on nothing but ``dim``, so that
    queries drawn with another seed come from the same distribution)."""
    fixed = np.random.default_rng(99)
    centres = fixed.standard_normal((50, 8))
    lift = fixed.standard_normal((8, dim))
    rng = np.random.default_rng(seed)
    latent = centres[rng.integers(0, 50, num)] + 0.5 * rng.standard_normal(
        (num, 8))
    points = latent @ lift + 0.05 * rng.standard_normal((num, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


def test_auto_factory_follows_size_and_budget():
    assert auto_factory(EXACT_MAX_ITEMS, 256) == 'Flat'
    big = auto_factory(1_000_000, 256)
    assert big == 'IVF1024,PQ64x4fs,Refine(SQ8)'
    # 1M x (32 B codes + 8 B ids + 256 B SQ8) + the coarse centroids.
    assert estimate_bytes(big, 1_000_000, 256) == 296_000_000 + 1024 * 1024
    assert auto_factory(1_000_000, 256, 200 * 2**20) == \
        'IVF1024,PQ64x4fs,Refine(SQ4)'
    assert auto_factory(1_000_000, 256, 60 * 2**20) == 'IVF1024,PQ64x4fs'
    # Exact search would be over the budget: an IVF index even when small.
    assert auto_factory(40_000, 256, 20 * 2**20).startswith('IVF')
    with pytest.raises(ValueError, match='Raise --memory-budget'):
        auto_factory(1_000_000, 256, 2**20)


def test_tuned_recall_holds_on_other_queries():
    gallery, tuning, held_out = (clustered(20_000, 32, s) for s in (0, 1, 2))
    index, info = build_ann_index(gallery, 'IVF64,PQ16x4fs,Refine(SQ8)')
    assert info['train_size'] == 10_000 and info['index_bytes'] > 0
    assert index.ntotal == len(gallery)
    tuned = tune_search_params(index, gallery, tuning[:300], 0.9)
    assert tuned['recall_at_10'] >= 0.9
    assert all(point['recall'] < 0.9 for point in tuned['curve'][:-1])
    truth = exact_topk(gallery, held_out[:300], 10)
    recall = recall_at_k(served_topk(index, gallery, held_out[:300], 10, 8),
                         truth)
    assert recall >= 0.85
    # Fewer lists probed: lower recall (the parameter is live).
    set_search_params(index, dict(nprobe=1))
    assert recall_at_k(served_topk(index, gallery, held_out[:300], 10, 8),
                       truth) < recall or tuned['params']['nprobe'] == 1


def test_exact_topk_blocks_equal_one_search():
    faiss = import_faiss()
    gallery, queries = clustered(3000, 16, 0), clustered(20, 16, 1)
    flat = faiss.IndexFlatIP(16)
    flat.add(gallery)
    expected = flat.search(queries, 10)[1]
    assert (exact_topk(gallery, queries, 10) == expected).all()
    assert (exact_topk(gallery, queries, 10, block=700) == expected).all()


def test_memory_budget_and_bad_settings():
    gallery = clustered(2000, 16, 0)
    with pytest.raises(ValueError, match='over the memory budget'):
        build_ann_index(gallery, 'Flat', memory_budget=1000)
    with pytest.raises(ValueError, match='does not know'):
        build_ann_index(gallery, 'NoSuchIndex12')
    with pytest.raises(ValueError, match='only 2000 items'):
        build_ann_index(gallery, 'IVF4096,Flat')
    index, _ = build_ann_index(gallery, 'Flat')
    with pytest.raises(ValueError, match='no search parameter'):
        set_search_params(index, dict(nprobe=4))
    assert parse_search_params('nprobe=32, k_factor_rf=4') == dict(
        nprobe=32, k_factor_rf=4)
    with pytest.raises(ValueError, match='name=integer'):
        parse_search_params('nprobe=lots')


def test_written_table_reopens_and_damage_is_refused(tmp_path):
    gallery, queries = clustered(4000, 16, 0), clustered(200, 16, 1)
    entry = write_ann(
        str(tmp_path), 'images', gallery, queries, 'IVF16,Flat', None, 0.99)
    assert entry['factory'] == 'IVF16,Flat' and entry['queries'] == 200
    index, embeds = open_ann(str(tmp_path), 'images', entry, 4000, 16, 'CMD')
    assert import_faiss().extract_index_ivf(index).nprobe == \
        entry['params']['nprobe']
    assert isinstance(embeds, EmbeddingRows) and embeds.shape == (4000, 16)
    assert (np.asarray(embeds) == gallery).all()
    assert (embeds[7] == gallery[7]).all()
    assert (embeds[np.array([3, 0, 3999])] == gallery[[3, 0, 3999]]).all()
    assert (embeds[5:9] == gallery[5:9]).all()
    with pytest.raises(IndexError, match='out of 0..3999'):
        embeds[np.array([4000])]
    for nums, match in (((4000, 32), 'width 16, not 32'),
                        ((3999, 16), '4000 vectors, not 3999')):
        with pytest.raises(IndexFileError, match=match) as err:
            open_ann(str(tmp_path), 'images', entry, *nums, 'CMD')
        assert str(tmp_path / 'images.faiss') in str(err.value)
        assert str(err.value).endswith('Rebuild it: CMD')
    path = tmp_path / 'images.faiss'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(IndexFileError, match='truncated or foreign'):
        open_ann(str(tmp_path), 'images', entry, 4000, 16, 'CMD')
    path.write_bytes(b'not faiss at all' * 10)
    with pytest.raises(IndexFileError, match='images.faiss is not'):
        open_ann(str(tmp_path), 'images', entry, 4000, 16, 'CMD')
    path.write_bytes(data)
    np.save(tmp_path / 'images.npy', gallery[:10])
    with pytest.raises(IndexFileError, match=r'images.npy holds .*CMD'):
        open_ann(str(tmp_path), 'images', entry, 4000, 16, 'CMD')
    os.remove(tmp_path / 'images.faiss')
    with pytest.raises(IndexFileError, match='images.faiss is missing'):
        open_ann(str(tmp_path), 'images', entry, 4000, 16, 'CMD')


def test_search_benchmark_synthetic(tmp_path):
    out = tmp_path / 'ann.json'
    result = load_tool('analysis_tools/search_benchmark.py').main([
        '--synthetic', '3000', '--dim', '32', '--index', 'IVF16,Flat',
        '--queries', '60', '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(out)
    ])
    import json
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    for key in ('p50_ms', 'p95_ms', 'recall_at_10', 'index_bytes',
                'startup_s'):
        assert saved[key] >= 0, key
    assert saved['p50_ms'] <= saved['p95_ms']
    assert 0.9 <= saved['recall_at_10'] <= 1
    assert saved['index_bytes'] == os.path.getsize(tmp_path / 'work' /
                                                   'images.faiss')


def test_search_benchmark_store_and_update_modes(tmp_path):
    """The storage mode opens the item table of N items (and the ANN files
    of a synthetic run); the update mode adds products to that index."""
    tool = load_tool('analysis_tools/search_benchmark.py')
    ann = str(tmp_path / 'ann')
    tool.main([
        '--synthetic', '3000', '--dim', '32', '--index', 'IVF16,Flat',
        '--queries', '20', '--work-dir', ann
    ])
    store = tool.main([
        '--store', '3000', '--work-dir',
        str(tmp_path / 'store'), '--ann-dir', ann
    ])
    assert store['store']['ann_ntotal'] == 3000
    assert store['store']['open_s'] >= 0 and store['jsonl']['open_s'] >= 0
    update = tool.main([
        '--add-products', '4', '--ann-dir', ann, '--store-dir',
        str(tmp_path / 'store'), '--work-dir',
        str(tmp_path / 'update')
    ])
    assert (update['rows_after'], update['faiss_ntotal_after'],
            update['products_after']) == (3012, 3012, 1004)
