"""The inference API and the demo scripts."""
import copy
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import (NANO_ITC, draw_product, finish_tool,
                      save_model_checkpoint, save_without_heads, start_tool)
from mvlt.apis import MVLTInferencer
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules

register_all_modules()


@pytest.fixture(scope='module')
def api_setup(nano_config, nano_data, tmp_path_factory):
    root = tmp_path_factory.mktemp('api')
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = NANO_ITC
    checkpoint = save_model_checkpoint(cfg.model, str(root / 'nano.pth'))
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.load_state_dict(torch.load(checkpoint)['state_dict'])
    config = str(root / 'nano_itc.py')
    cfg.dump(config)
    images = [
        osp.join(nano_data['root'], 'images', name)
        for name in ('red_circle_0.png', 'blue_square_0.png',
                     'green_circle_1.png', 'yellow_square_1.png')
    ]
    captions = [
        'a red circle on a white background',
        'a blue square on a white background',
        'a green circle on a white background',
    ]
    return dict(
        config=config,
        checkpoint=checkpoint,
        images=images,
        captions=captions,
        model=model.eval(),
        cfg=cfg)


def test_score_matches_the_model(api_setup):
    inferencer = MVLTInferencer(api_setup['config'], api_setup['checkpoint'])
    images, captions = api_setup['images'][:3], api_setup['captions']
    scores = inferencer.score(images, captions)
    assert scores.shape == (3, ) and ((scores >= 0) & (scores <= 1)).all()
    # In-memory RGB arrays give the same scores as the files.
    arrays = [cv2.imread(p)[..., ::-1].copy() for p in images]
    assert np.array_equal(inferencer.score(arrays, captions), scores)
    # The same pairs through the model directly.
    pixels = inferencer.load_images(images)
    ids, mask = inferencer.tokenize_captions(captions)
    model = api_setup['model']
    with torch.no_grad():
        direct = model.predict_outputs(
            dict(
                images=model.data_preprocessor.normalize(pixels),
                input_ids=ids,
                attention_mask=mask),
            tasks=('itm', ))['itm_score'].numpy()
    np.testing.assert_allclose(scores, direct, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='pass pairs'):
        inferencer.score(images, captions[:2])


def test_rankings_with_and_without_itc(api_setup):
    inferencer = MVLTInferencer(api_setup['config'], api_setup['checkpoint'])
    images, captions = api_setup['images'], api_setup['captions']
    full = inferencer.rank_images(captions[0], images, topk=None)
    assert sorted(h['index'] for h in full) == [0, 1, 2, 3]
    assert [h['score'] for h in full] == sorted((h['score'] for h in full),
                                                reverse=True)
    expected = inferencer.score(images, [captions[0]] * 4)
    for hit in full:
        assert hit['score'] == pytest.approx(expected[hit['index']], abs=1e-6)
    # The gallery is decoded and embedded once.
    assert len(inferencer._galleries) == 1
    top2 = inferencer.rank_images(captions[0], images, topk=2, rerank_k=2)
    assert len(top2) == 2 and len(inferencer._galleries) == 1
    # Re-ranking every item is the plain ranking.
    assert inferencer.rank_images(
        captions[0], images, topk=None, rerank_k=4) == full
    # The ITC top 2 are scored by ITM and rank above the rest (ITC order).
    hits = inferencer.rank_captions(images[1], captions, topk=3, rerank_k=2)
    assert [h['by'] for h in hits] == ['itm', 'itm', 'itc']
    assert hits[0]['score'] >= hits[1]['score']
    assert all(h['by'] == 'itm' for h in full)


def test_reconstruct(api_setup):
    inferencer = MVLTInferencer(api_setup['config'], api_setup['checkpoint'])
    out = inferencer.reconstruct(draw_product('red', 'circle', 0))
    assert out['reconstruction'].shape == (64, 64, 3)
    assert out['reconstruction'].dtype == np.uint8
    assert out['mask'].mean() == pytest.approx(0.5)
    assert (out['masked'][out['mask']] == 128).all()
    again = inferencer.reconstruct(draw_product('red', 'circle', 0))
    assert np.array_equal(again['reconstruction'], out['reconstruction'])


def test_missing_heads_are_named(api_setup, nano_config, tmp_path):
    # A checkpoint without the ITC and MIR heads.
    cfg = copy.deepcopy(api_setup['cfg'])
    model = MODELS.build(copy.deepcopy(cfg.model))
    checkpoint = save_without_heads(model.state_dict(),
                                    str(tmp_path / 'partial.pth'), 'itc',
                                    'mir')
    inferencer = MVLTInferencer(api_setup['config'], checkpoint)
    with pytest.raises(KeyError, match=r"\['mir'\]"):
        inferencer.reconstruct(draw_product('red', 'circle', 0))
    with pytest.raises(KeyError, match='ITC head'):
        inferencer.rank_images('a red circle', api_setup['images'], rerank_k=2)


@pytest.mark.slow
def test_demo_scripts(api_setup, tmp_path):
    base = [api_setup['config'], api_setup['checkpoint']]
    out = str(tmp_path / 'mig.png')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    # The two demos at once, one thread each.
    ranking = start_tool([sys.executable, 'tools/demo/retrieval_demo.py'] +
                         base +
                         ['--mode', 'rank-images', '--topk', '2', '--images'] +
                         api_setup['images'] +
                         ['--captions', api_setup['captions'][0]], env)
    mig = start_tool([sys.executable, 'tools/demo/mig_demo.py'] + base +
                     [api_setup['images'][0], '--out', out], env)
    stdout = finish_tool(ranking).stdout
    assert 'caption: a red circle' in stdout
    assert stdout.count('  #') == 2
    finish_tool(mig)
    assert cv2.imread(out).shape[1] > 3 * 64


def test_mmengine_inferencer_form(api_setup):
    """An MMEngine BaseInferencer: calling it on (image, caption) pairs
    gives the ITM scores of :meth:`score`."""
    from mmengine.infer import BaseInferencer
    inferencer = MVLTInferencer(api_setup['config'], api_setup['checkpoint'])
    assert isinstance(inferencer, BaseInferencer)
    images, captions = api_setup['images'][:3], api_setup['captions']
    expected = inferencer.score(images, captions)
    out = inferencer(list(zip(images, captions)), batch_size=2)
    assert [p['itm_score'] for p in out['predictions']] == pytest.approx(
        expected.tolist(), abs=1e-6)
    one = inferencer((images[0], captions[0]))
    assert one['predictions'][0]['itm_score'] == pytest.approx(
        float(expected[0]), abs=1e-6)
