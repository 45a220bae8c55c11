"""Non-finite training signals and the ITC temperature: NaN / inf ITC
similarities reach the non-finite guard instead of crashing the sampler;
the temperature is not weight-decayed and its clamp keeps a gradient;
compiled models say when Dynamo's recompile limit is hit."""
import copy
import math

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from conftest import NANO_ITC, REPO, train_batch
from mvlt.engine import NonFiniteSkipOptimWrapper
from mvlt.models.negative_samplers import NegativeCandidates
from mvlt.registry import MODELS, NEGATIVE_SAMPLERS
from mvlt.utils import register_all_modules

register_all_modules()


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize('uniform_prob', [0.0, 0.5])
def test_itc_hard_sampler_survives_non_finite_similarities(bad, uniform_prob):
    """Rows with some and with only non-finite similarities: wrong captions
    are still drawn, no exception (torch.multinomial refused NaN / inf)."""
    size = 8
    similarity = torch.randn(size, size)
    similarity[0, 3] = bad
    similarity[1] = bad  # a NaN image: its whole row
    similarity[2, :] = float('nan')
    candidates = NegativeCandidates(
        product=torch.arange(size),
        caption=torch.arange(size),
        group=None,
        similarity=similarity)
    sampler = NEGATIVE_SAMPLERS.build(
        dict(type='itc-hard', uniform_prob=uniform_prob, neg_ratio=1.0))
    pairs = sampler(size, candidates, torch.Generator().manual_seed(0))
    negatives = pairs.labels == 0
    assert int(negatives.sum()) == size
    assert (pairs.image_index[negatives] != pairs.text_index[negatives]).all()


@pytest.fixture(scope='module')
def itc_model(nano_config):
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = NANO_ITC
    cfg.model.itm_sampler = dict(type='itc-hard')
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(cfg.model)), cfg


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_itc_is_a_skipped_step(itc_model, bad):
    """A NaN / inf image gives non-finite ITC similarities: MVLT.loss returns
    a non-finite loss (no exception in the sampler) and the optimiser
    wrapper skips and counts the step, leaving the weights as they were."""
    model, cfg = itc_model
    model.train()
    data = model.data_preprocessor(train_batch(cfg, 8), True)
    for key in ('images', 'target_images'):
        data['inputs'][key][0] = bad
    losses = model(**data, mode='loss')
    assert not math.isfinite(float(losses['loss_itc'].detach()))
    wrapper = NonFiniteSkipOptimWrapper(
        optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    wrapper.update_params(
        sum(v for k, v in losses.items() if k.startswith('loss')))
    assert wrapper.last_step_skipped and wrapper.skipped_steps == 1
    assert all(torch.equal(before[k], v) for k, v in model.named_parameters())


@pytest.mark.parametrize('config', [
    'configs/mvlt/synthetic/pretrain_synthetic_demo.py',
    'configs/mvlt/pretrain_fashiongen.py',
    'configs/mvlt/coco_retrieval_finetune.py',
])
def test_temperature_is_not_weight_decayed(config):
    """The optimiser's parameter groups: the ITC temperature in a group
    without weight decay, the projections with it."""
    cfg = Config.fromfile(f'{REPO}/{config}')
    heads = nn.Module()
    heads.itc = MODELS.build(dict(NANO_ITC))
    model = nn.Module()
    model.heads = heads
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            decay[names[id(param)]] = group['weight_decay']
    assert decay['heads.itc.log_temperature'] == 0.0
    assert decay['heads.itc.visual_proj.weight'] > 0.0


def test_temperature_clamp_keeps_a_gradient():
    """A temperature pushed outside its range is clamped in place before
    the next training pass, so its gradient is not cut by the clamp."""
    head = MODELS.build(dict(NANO_ITC, temperature_range=(0.01, 0.5)))
    head.train()
    from mvlt.models.backbones import UnimodalFeatures, VLFeatures
    fields = VLFeatures._fields
    visual = VLFeatures(**{
        f: [torch.randn(4, 128, 2, 2)] if f == 'visual' else None
        for f in fields
    })
    text = VLFeatures(
        **
        {f: [torch.randn(4, 5, 128)] if f == 'text' else None
         for f in fields})
    feats = UnimodalFeatures(visual=visual, text=text)
    with torch.no_grad():
        head.log_temperature.fill_(math.log(2.0))  # above 0.5
    loss = head.loss(feats, {})['loss_itc']
    loss.backward()
    assert head.log_temperature.grad is not None
    assert float(head.log_temperature.grad.abs()) > 0
    assert math.isclose(
        head.log_temperature.item(), math.log(0.5), rel_tol=1e-6)


def test_recompile_limit_raises_with_the_shape():
    """A tiny compiled module driven past a lowered recompile limit: an
    error naming the batch's shapes, not a silent fall-back to eager."""
    from mvlt.models.compiling import parse_compile, recompile_scope
    module = nn.Linear(4, 4)
    module.compile(backend='eager', dynamic=False)
    options = parse_compile(dict(backend='eager', recompile_limit=2))
    with torch._dynamo.config.patch(automatic_dynamic_shapes=False):
        with pytest.raises(RuntimeError) as info:
            for rows in range(1, 6):
                inputs = dict(images=torch.randn(rows, 4))
                with recompile_scope(options, 1, inputs):
                    module(inputs['images'])
    assert 'recompile limit (2)' in str(info.value)
    assert "'images': (3, 4)" in str(info.value)
    torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_scoring_api_raises_past_its_limit(nano_config):
    """The scoring API (``score_pairs``) of a compiled nano model runs under
    the same rule as training: past the limit, an error with the shapes."""
    cfg = copy.deepcopy(nano_config.model)
    cfg.compile = dict(backend='eager', recompile_limit=1)
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    ids = torch.randint(5, 20, (4, 32))
    with torch._dynamo.config.patch(automatic_dynamic_shapes=False):
        with pytest.raises(RuntimeError, match='recompile limit'):
            for rows in (1, 2, 3, 4):
                model.score_pairs(
                    torch.randn(rows, 3, 64, 64), ids[:rows],
                    torch.ones_like(ids[:rows]))
    torch._dynamo.reset()
