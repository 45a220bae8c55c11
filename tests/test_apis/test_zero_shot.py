"""Zero-shot classification by ITC similarity to prompt captions:
MVLTInferencer.classify and the ZeroShotCategoryHead share one function."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from search_test_utils import NANO_ITC, fit_itc_projections, save_model

from conftest import COLOURS, SHAPES
from mvlt.apis import MVLTInferencer
from mvlt.models.heads import prompt_captions
from mvlt.utils import register_all_modules

register_all_modules()
LABELS = [f'{c} {s}' for c in COLOURS for s in SHAPES]
TEMPLATE = 'a {} on a white background'


@pytest.fixture(scope='module')
def fitted(nano_config, nano_data, tmp_path_factory):
    """The nano model whose ITC head maps each product's images and its
    caption to one one-hot embedding (search_test_utils)."""
    root = str(tmp_path_factory.mktemp('zero_shot'))
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = dict(NANO_ITC, embed_dim=128)
    cfg.model.heads.zero_shot = dict(
        type='ZeroShotCategoryHead',
        classes=dict(category=LABELS),
        templates=TEMPLATE)
    config, checkpoint = save_model(cfg, root, 'nano_zero_shot')
    rows = nano_data['rows']
    paths = [
        osp.join(nano_data['root'], 'images', r['img_path']) for r in rows
    ]
    fit_itc_projections(config, checkpoint, paths,
                        [r['caption'] for r in rows],
                        [str(r['product_id']) for r in rows])
    return MVLTInferencer(config, checkpoint), paths, rows


def test_classify_predicts_each_products_label(fitted):
    inferencer, paths, rows = fitted
    out = inferencer.classify(paths, LABELS, template=TEMPLATE, topk=3)
    want = [r['caption'][2:-len(' on a white background')] for r in rows]
    assert [o['pred_class'] for o in out] == want
    for item in out:
        assert item['pred_scores'].shape == (len(LABELS), )
        assert item['pred_scores'].sum() == pytest.approx(1.0, abs=1e-5)
        assert item['topk'][0] == (item['pred_class'], item['pred_score'])
        assert len(item['topk']) == 3
    # Prompt ensembling: the mean of the templates' embeddings.
    both = inferencer.classify(paths[:2], LABELS, template=[TEMPLATE, 'a {}'])
    assert [o['pred_label']
            for o in both] == [o['pred_label'] for o in out[:2]]


def test_head_and_classify_agree(fitted):
    inferencer, paths, _ = fitted
    pixels = inferencer._normalise(inferencer.load_images(paths))
    with torch.no_grad():
        scores = inferencer.model.predict_outputs(
            dict(images=pixels), ('zero_shot', ))['category_scores']
    probs = np.stack([
        o['pred_scores']
        for o in inferencer.classify(paths, LABELS, template=TEMPLATE)
    ])
    np.testing.assert_allclose(scores.numpy(), probs, atol=1e-6)


def test_bad_prompts_are_named():
    with pytest.raises(ValueError, match='has no {}'):
        prompt_captions(['shirt'], 'a shirt')
    with pytest.raises(ValueError, match='needs labels'):
        prompt_captions([], '{}')
    with pytest.raises(ValueError, match='list of prompt captions'):
        prompt_captions({'shirt': 'a shirt'})


def test_zero_shot_demo_prints_type_and_colour_accuracy(
        synthetic_fashiongen, tmp_path, capsys):
    """The demo's step: accuracy of the garment type and colour its
    captions name (random weights: any figure, every image counted)."""
    from mmengine.config import Config

    from conftest import REPO, load_tool
    config = osp.join(REPO, 'configs', 'mvlt', 'synthetic',
                      'pretrain_synthetic_demo.py')
    vocab = {
        'model.data_preprocessor.tokenizer.vocab_file':
        synthetic_fashiongen['vocab']
    }
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(vocab)
    _, checkpoint = save_model(cfg, str(tmp_path), 'demo')
    results = load_tool('demo/zero_shot_demo.py').main([
        config, checkpoint, '--gallery', synthetic_fashiongen['validation'],
        '--cfg-options', f"{next(iter(vocab))}={synthetic_fashiongen['vocab']}"
    ])
    printed = capsys.readouterr().out
    for attribute in ('garment type', 'colour'):
        assert f'Zero-shot {attribute}' in printed
        assert results[attribute]['count'] == \
            synthetic_fashiongen['num_images']['validation']
        assert 0 <= results[attribute]['accuracy'] <= 100
