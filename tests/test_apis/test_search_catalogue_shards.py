"""Catalogue search over image-caption tar shards: a generated shop
catalogue indexed end to end (the benchmark's --generate mode) and a shards
gallery read in any order."""
import pytest
from search_test_utils import build_nano_index

from conftest import load_tool
from mvlt.apis import open_gallery
from mvlt.utils import register_all_modules

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')
register_all_modules()


@pytest.fixture(scope='module')
def built(nano_config, nano_data, tmp_path_factory):
    """The nano model with a random ITC head (and its index of the nano
    gallery, built by the tool)."""
    return build_nano_index(nano_config, nano_data,
                            str(tmp_path_factory.mktemp('search')))


def test_benchmark_tool_end_to_end(built, tmp_path, capsys):
    """The end-to-end mode: a generated catalogue (written once, reused),
    indexed by the model, with the build's stages, size and recall."""
    pytest.importorskip('wids')
    tool = load_tool('analysis_tools/search_benchmark.py')
    manifest = tmp_path / 'shop' / 'manifest.json'
    args = [
        built['config'], built['checkpoint'], '--generate', '24', '--gallery',
        str(manifest), '--queries', '2', '--warmup', '0', '--rerank-k', '2',
        '--rank-queries', '4', '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(tmp_path / 'e2e.json')
    ]
    result = tool.main(args)
    assert result['num_images'] == 24
    assert set(result['stage_seconds']) == {
        'prepare', 'embed', 'store', 'captions', 'ann', 'ranking'
    }
    assert result['ann']['images']['recall_at_10'] == 1.0  # exact: Flat
    assert 0 < result['index_bytes'] < sum(
        result['index_files_bytes'].values())  # the shards are apart
    assert 'index on disk' in capsys.readouterr().out
    written = manifest.stat().st_mtime_ns
    assert tool.main(args)['num_images'] == 24
    assert manifest.stat().st_mtime_ns == written  # reused, not rewritten
    with pytest.raises(SystemExit, match='holds 24 photos, not 30'):
        tool.main(args[:3] + ['30'] + args[4:])


def test_shards_gallery_opens_each_shard_once(tmp_path, monkeypatch):
    """A shards gallery read in any order (a re-rank's photos) opens each
    of its shards once, even past the data set's default LRU of 8."""
    wids = pytest.importorskip('wids.wids')
    from mvlt.datasets.synthetic import write_synthetic_catalogue
    write_synthetic_catalogue(
        str(tmp_path / 'shop'), 24, img_size=32, max_samples=2)
    opened = []
    original = wids.IndexedTarSamples

    def counting(*args, **kwargs):
        opened.append(kwargs.get('path'))
        return original(*args, **kwargs)

    monkeypatch.setattr(wids, 'IndexedTarSamples', counting)
    gallery = open_gallery(str(tmp_path / 'shop' / 'manifest.json'))
    for _ in range(2):  # every shard in turn, twice: an LRU of 8 thrashes
        images = gallery.read_many(range(0, 24, 2))
    assert len(images) == 12 and images[0].shape == (32, 32, 3)
    assert len(opened) == len(set(opened)) == 12
