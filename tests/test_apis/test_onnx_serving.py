"""ONNX export of the ITC towers and the ITM matcher, its manifest checks,
and the torch-free ONNX Runtime backend of the search service."""
import copy
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request

import cv2
import numpy as np
import pytest
import torch
from search_test_utils import NANO_ITC, free_port, save_model

from conftest import REPO, load_tool, run_python
from mvlt.apis import CatalogueSearch, MVLTInferencer, SearchIndex
from mvlt.apis.search_app import build_app
from mvlt.deploy import ManifestMismatchError, OnnxInferencer, foreground_box
from mvlt.models.data_preprocessors.image_ops import (crop_resize,
                                                      foreground_boxes)
from mvlt.utils import register_all_modules

pytest.importorskip('onnxruntime', reason='requirements/optional.txt')
pytest.importorskip('onnx', reason='requirements/optional.txt')
pytest.importorskip('faiss', reason='requirements/optional.txt')
register_all_modules()

#: A sitecustomize that makes every import of torch fail, as in a serving
#: container without torch.
NO_TORCH = textwrap.dedent('''
    import importlib.abc, importlib.machinery, sys

    class _Refuse(importlib.abc.Loader):
        def create_module(self, spec):
            raise ImportError(f'{spec.name} is not installed here')

        def exec_module(self, module):
            pass

    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('torch', 'torchvision'):
                return importlib.machinery.ModuleSpec(name, _Refuse())
            return None

    sys.meta_path.insert(0, _NoTorch())
''')
QUERIES = ('red circle 0', 'blue square', 'a yellow circle', 'green')


def no_torch_env(tmp_path) -> dict:
    hook = tmp_path / 'no_torch'
    hook.mkdir(exist_ok=True)
    (hook / 'sitecustomize.py').write_text(NO_TORCH)
    env = dict(os.environ, HF_HUB_OFFLINE='1')
    env['PYTHONPATH'] = os.pathsep.join(
        [str(hook), REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


@pytest.fixture(scope='module')
def exported(nano_config, nano_data, tmp_path_factory):
    """The nano model with an ITC head (random weights), exported, and its
    index of the folder gallery of the nano images."""
    root = str(tmp_path_factory.mktemp('onnx'))
    cfg = copy.deepcopy(nano_config)
    # Random weights: fit_itc_projections would give ill-conditioned
    # projections that magnify float rounding 1000-fold.
    cfg.model.heads.itc = NANO_ITC
    config, checkpoint = save_model(cfg, root, 'nano_itc')
    folder = osp.join(nano_data['root'], 'images')
    out = osp.join(root, 'export')
    manifest = load_tool('deployment/export_onnx.py').main(
        [config, checkpoint, '--out', out])
    index = osp.join(root, 'index')
    load_tool('misc/build_search_index.py').main([
        config, checkpoint, '--gallery', f'folder:{folder}', '--out', index,
        '--batch-size', '16'
    ])
    return dict(
        root=root,
        config=config,
        checkpoint=checkpoint,
        out=out,
        manifest=manifest,
        index=index,
        cfg=cfg,
        paths=sorted(osp.join(folder, name) for name in os.listdir(folder)))


def test_export_matches_pytorch(exported):
    manifest = exported['manifest']
    assert set(manifest['graphs']) == {'image', 'text', 'itm'}
    for graph in manifest['graphs'].values():
        assert graph['max_abs_diff'] <= 1e-4
        assert osp.isfile(osp.join(exported['out'], graph['file']))
    assert manifest['opset'] == 17
    assert manifest['preprocessing']['img_size'] == [64, 64]
    assert manifest['tokenizer']['text_len'] == 32
    # On real inputs, beside the generated ones of the export check.
    ort = OnnxInferencer(
        exported['out'], checkpoint=exported['checkpoint'], batch_size=5)
    torch_side = MVLTInferencer(exported['config'], exported['checkpoint'])
    paths = exported['paths']
    captions = [osp.basename(p)[:-4].replace('_', ' ') for p in paths]
    captions[0] = 'a much longer caption than the others, ' * 3
    for name in ('embed_images', ):
        diff = getattr(ort, name)(paths) - getattr(torch_side, name)(paths)
        assert np.abs(diff).max() <= 1e-4
    diff = ort.embed_captions(captions) - torch_side.embed_captions(captions)
    assert np.abs(diff).max() <= 1e-4
    diff = ort.score(paths, captions[::-1]) - torch_side.score(
        paths, captions[::-1])
    assert np.abs(diff).max() <= 1e-4


def test_mismatched_export_is_refused(exported, tmp_path):
    other = str(tmp_path / 'other.pth')
    torch.manual_seed(1)
    state = torch.load(exported['checkpoint'], weights_only=True)
    state['state_dict']['heads.itc.visual_proj.bias'] += 1
    torch.save(state, other)
    with pytest.raises(ManifestMismatchError, match='exported from'):
        OnnxInferencer(exported['out'], checkpoint=other)
    vocab = tmp_path / 'vocab.txt'
    vocab.write_text('[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nother\n')
    with pytest.raises(ManifestMismatchError, match='vocabulary'):
        OnnxInferencer(exported['out'], vocab_file=str(vocab))
    tampered = str(tmp_path / 'tampered')
    shutil.copytree(exported['out'], tampered)
    with open(osp.join(tampered, 'itm_matcher.onnx'), 'ab') as f:
        f.write(b'\0')
    with pytest.raises(ManifestMismatchError, match='changed after'):
        OnnxInferencer(tampered)
    # An index of other weights refuses the graphs.
    meta_path = osp.join(exported['index'], 'meta.json')
    moved = str(tmp_path / 'index')
    shutil.copytree(exported['index'], moved)
    with open(osp.join(moved, 'meta.json')) as f:
        meta = json.load(f)
    meta['checkpoint']['sha256'] = '0' * 64
    with open(osp.join(moved, 'meta.json'), 'w') as f:
        json.dump(meta, f)
    assert osp.isfile(meta_path)
    with pytest.raises(ManifestMismatchError, match='exported from'):
        SearchIndex(moved, backend='onnxruntime', onnx_dir=exported['out'])


def test_cpu_preprocessing_is_the_torch_free_function(exported):
    """The data preprocessor's CPU crop + resize is prepare_image: the same
    boxes as the batched torch version, the same pixels as before."""
    rng = np.random.default_rng(0)
    images = []
    for index in range(12):
        height, width = rng.integers(40, 200, size=2)
        image = np.full((height, width, 3), 255, np.uint8)
        y1, x1 = rng.integers(0, height // 2), rng.integers(0, width // 2)
        image[y1:y1 + rng.integers(3, height // 2),
              x1:x1 + rng.integers(3, width // 2)] = rng.integers(
                  0, 239, size=3)
        if index % 3 == 0:  # specks below min_fraction, noise, blank
            image[rng.integers(0, height), rng.integers(0, width)] = 0
        if index == 5:
            image[:] = 255
        images.append(image)
    chw = [torch.from_numpy(im).permute(2, 0, 1) for im in images]
    cfg = copy.deepcopy(exported['cfg'])
    cfg.model.data_preprocessor.foreground_crop = dict()
    preprocessor = MVLTInferencer(cfg).model.data_preprocessor
    crop = preprocessor.foreground_crop
    boxes = torch.cat([foreground_boxes(im[None]) for im in chw])
    assert [foreground_box(im) for im in images] == \
        [tuple(b) for b in boxes.tolist()]
    assert torch.equal(
        preprocessor.prepare_images(chw),
        crop_resize(chw, boxes, (64, 64), crop['pad_val'], True, 'cv2'))


def test_serving_modules_import_without_torch(tmp_path):
    script = textwrap.dedent('''
        import sys
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit('torch imported')
        import mvlt.apis.catalogue_search, mvlt.apis.search_index
        import mvlt.deploy, mvlt.text.tokenizer, mvlt.utils.ranking
        from mvlt.apis import CatalogueSearch, SearchIndex  # noqa: F401
        print(sorted(m for m in sys.modules if m.split('.')[0] in
                     ('torch', 'torchvision', 'timm')))
    ''')
    out = run_python(script, env=no_torch_env(tmp_path))
    assert out.strip() == '[]'


def _get(url: str, data: bytes = None) -> dict:
    request = urllib.request.Request(
        url, data=data, method='POST' if data else 'GET')
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def _without_timing(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != 'timing'}


def _assert_same(onnx: dict, pytorch: dict) -> None:
    """Same items in the same order; scores equal within 1e-4."""
    onnx, pytorch = _without_timing(onnx), _without_timing(pytorch)
    assert onnx.keys() == pytorch.keys()
    for key in onnx:
        if not isinstance(onnx[key], list):
            assert onnx[key] == pytorch[key]
            continue
        assert len(onnx[key]) == len(pytorch[key])
        for a, b in zip(onnx[key], pytorch[key]):
            assert a['score'] == pytest.approx(b['score'], abs=1e-4)
            assert dict(a, score=0) == dict(b, score=0)


@pytest.mark.slow
def test_search_service_without_torch_answers_as_pytorch(exported, tmp_path):
    """search_app.py --backend onnxruntime in a process where torch cannot
    be imported answers as the PyTorch backend on the same index."""
    pytest.importorskip('gradio', reason='requirements/optional.txt')
    from fastapi.testclient import TestClient
    port = free_port()
    env = no_torch_env(tmp_path)
    env['GRADIO_TEMP_DIR'] = str(tmp_path / 'uploads_onnx')
    server = subprocess.Popen([
        sys.executable, 'tools/demo/search_app.py', exported['index'],
        '--port',
        str(port), '--backend', 'onnxruntime', '--onnx', exported['out'],
        '--threads', '1'
    ],
                              cwd=REPO,
                              env=env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              text=True)
    try:
        assert 'MVLT catalogue search' in server.stdout.readline()
        base = f'http://127.0.0.1:{port}'
        while True:  # until uvicorn listens (or the server dies)
            assert server.poll() is None, server.stdout.read()
            try:
                info = _get(base + '/api/info')
                break
            except OSError:
                time.sleep(0.2)
        assert info['backend'] == 'onnxruntime'
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv('GRADIO_TEMP_DIR', str(tmp_path / 'uploads'))
            app = build_app(CatalogueSearch(SearchIndex(exported['index'])))
            client = TestClient(app, base_url='http://127.0.0.1')
            for query in QUERIES:
                for rerank in (0, 4):
                    path = f'/api/search?q={query}&k=6&rerank={rerank}'
                    want = client.get(path.replace(' ', '+')).json()
                    got = _get(base + path.replace(' ', '+'))
                    _assert_same(got, want)
                    assert [r['by'] for r in got['results']
                            ][:rerank] == ['itm'] * rerank
            photo = cv2.imencode('.png', cv2.imread(exported['paths'][3]))[1]
            path = '/api/image?k=4&rerank=3'
            _assert_same(
                _get(base + path, photo.tobytes()),
                client.post(path, content=photo.tobytes()).json())
            for row in (0, 7):
                path = f'/api/similar?row={row}&k=5'
                _assert_same(_get(base + path), client.get(path).json())
    finally:
        server.terminate()
        server.wait()


def test_index_builder_with_onnxruntime(exported, tmp_path):
    """build_search_index.py --backend onnxruntime embeds as PyTorch does,
    and refuses graphs of another checkpoint."""
    tool = load_tool('misc/build_search_index.py')
    folder = osp.dirname(exported['paths'][0])
    out = str(tmp_path / 'index')
    meta = tool.main([
        exported['config'], exported['checkpoint'], '--gallery',
        f'folder:{folder}', '--out', out, '--backend', 'onnxruntime', '--onnx',
        exported['out']
    ])
    assert meta['backend'] == 'onnxruntime'
    onnx_index = SearchIndex(
        out, backend='onnxruntime', onnx_dir=exported['out'])
    torch_index = SearchIndex(exported['index'])
    for name in ('image_embeds', 'caption_embeds'):
        # Row readers of images.npy / captions.npy: read them whole.
        diff = np.asarray(getattr(onnx_index, name)) - np.asarray(
            getattr(torch_index, name))
        assert np.abs(diff).max() <= 1e-4
    other = str(tmp_path / 'other.pth')
    state = torch.load(exported['checkpoint'], weights_only=True)
    state['state_dict']['heads.itc.text_proj.bias'] += 1
    torch.save(state, other)
    with pytest.raises(SystemExit, match='exported from'):
        tool.main([
            exported['config'], other, '--gallery', f'folder:{folder}',
            '--out',
            str(tmp_path / 'refused'), '--backend', 'onnxruntime', '--onnx',
            exported['out']
        ])
