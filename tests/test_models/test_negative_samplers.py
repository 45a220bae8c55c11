"""ITM negative samplers: never a positive as a negative, ITC-hard mining,
reproducibility, plug-ins, and training with them."""
import copy

import pytest
import torch
from mmengine.config import Config

from conftest import (nano_cfg_options, train_batch, train_steps,
                      write_plugin_config)
from mvlt.models.negative_samplers import NegativeCandidates
from mvlt.registry import MODELS, NEGATIVE_SAMPLERS
from mvlt.utils import register_all_modules

register_all_modules()

SAMPLERS = [
    dict(type='random'),
    dict(type='same-group', prob=0.7),
    dict(type='itc-hard'),
    dict(type='itc-hard', uniform_prob=0.5),
]


def _candidates(seed: int, size: int = 24) -> NegativeCandidates:
    """A batch with repeated products and captions shared across products
    (re-listed colourways), random ITC logits."""
    gen = torch.Generator().manual_seed(seed)
    product = torch.randint(0, 8, (size, ), generator=gen)
    caption = product.clone()
    caption[product == 1] = 2  # products 1 and 2 share their caption text
    return NegativeCandidates(
        product=product,
        caption=caption,
        group=product % 3,
        similarity=torch.randn(size, size, generator=gen) * 5)


@pytest.mark.parametrize('cfg', SAMPLERS)
def test_never_a_positive_as_negative(cfg):
    sampler = NEGATIVE_SAMPLERS.build(
        dict(cfg, neg_ratio=0.5, extra_negatives=2))
    gen = torch.Generator().manual_seed(0)
    for seed in range(30):
        candidates = _candidates(seed)
        pairs = sampler(24, candidates, gen)
        assert pairs.image_index.shape == pairs.text_index.shape == (72, )
        own = pairs.image_index
        text = pairs.text_index
        same_product = candidates.product[own] == candidates.product[text]
        same_caption = candidates.caption[own] == candidates.caption[text]
        assert torch.equal(pairs.labels, (same_product | same_caption).long())
        # Matched pairs come first and pair an image with its own caption.
        assert pairs.num_matched == 12
        assert torch.equal(own[:12], text[:12])
        # Every image here has wrong captions available: no negative is
        # of its product or carries its caption text.
        assert (pairs.labels[12:] == 0).all()


@pytest.mark.parametrize('cfg', SAMPLERS)
def test_a_batch_of_one_product_gives_matched_rows(cfg):
    sampler = NEGATIVE_SAMPLERS.build(dict(cfg, neg_ratio=1.0))
    candidates = NegativeCandidates(
        product=torch.zeros(4, dtype=torch.long),
        caption=torch.arange(4),
        similarity=torch.zeros(4, 4))
    pairs = sampler(4, candidates, torch.Generator().manual_seed(0))
    assert (pairs.labels == 1).all()


def test_itc_hard_prefers_the_confusable_caption():
    """On a constructed batch where each image's ITC similarity to one wrong
    caption is high, ITC-hard draws that caption far more often than the
    random sampler (statistical, fixed seed)."""
    size, draws = 16, 200
    product = torch.arange(size)
    confusable = (product + 1) % size  # the look-alike of each image
    logits = torch.zeros(size, size)
    logits[product, product] = 10.0  # its own caption (excluded)
    logits[product, confusable] = 4.0
    candidates = NegativeCandidates(
        product=product, caption=product, similarity=logits)
    hits = {}
    for name in ('itc-hard', 'random'):
        sampler = NEGATIVE_SAMPLERS.build(dict(type=name, neg_ratio=1.0))
        gen = torch.Generator().manual_seed(0)
        pairs = [sampler(size, candidates, gen) for _ in range(draws)]
        hits[name] = float(
            torch.cat([
                p.text_index == confusable[p.image_index] for p in pairs
            ]).float().mean())
    # exp(4) / (exp(4) + 14) = 0.80 expected; random: 1 / 15 = 0.07.
    assert hits['itc-hard'] > 0.7 and hits['random'] < 0.15


@pytest.mark.parametrize('cfg', SAMPLERS)
def test_reproducible_and_resumable(cfg):
    sampler = NEGATIVE_SAMPLERS.build(dict(cfg, extra_negatives=1))
    candidates = _candidates(3)

    def run(gen, steps):
        return [sampler(24, candidates, gen).text_index for _ in range(steps)]

    first = run(torch.Generator().manual_seed(7), 4)
    assert all(
        torch.equal(a, b)
        for a, b in zip(first, run(torch.Generator().manual_seed(7), 4)))
    # Resume after two steps from the saved generator state.
    gen = torch.Generator().manual_seed(7)
    run(gen, 2)
    state = gen.get_state()
    resumed = torch.Generator()
    resumed.set_state(state)
    assert all(torch.equal(a, b) for a, b in zip(first[2:], run(resumed, 2)))


def test_itc_hard_needs_an_itc_head(nano_config):
    cfg = copy.deepcopy(nano_config.model)
    cfg.itm_sampler = dict(type='itc-hard')
    with pytest.raises(ValueError, match='model.heads.itc'):
        MODELS.build(cfg)


PLUGIN = '''
"""Negatives from the next row of the batch: a plug-in outside mvlt/."""
from mvlt.models.negative_samplers import BaseNegativeSampler
from mvlt.registry import NEGATIVE_SAMPLERS


@NEGATIVE_SAMPLERS.register_module()
class NextRowNegatives(BaseNegativeSampler):
    """The caption of the next row that is a wrong one."""

    def choose(self, anchors, valid, candidates, generator):
        import torch
        shift = torch.arange(valid.shape[1], device=valid.device)
        order = (shift[None] - anchors[:, None] - 1) % valid.shape[1]
        return torch.where(valid, -order, -valid.shape[1]).argmax(dim=1)
'''


def test_plugin_sampler_from_outside_the_package(tmp_path, nano_data,
                                                 monkeypatch):
    config = write_plugin_config(
        tmp_path / 'my_negatives.py', 'next_row_negatives', PLUGIN,
        "dict(itm_sampler=dict(\n"
        "    _delete_=True, type='NextRowNegatives', neg_ratio=1.0))")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(nano_cfg_options(nano_data))
    model = MODELS.build(cfg.model)
    assert type(model.itm_sampler).__name__ == 'NextRowNegatives'
    data = model.data_preprocessor(train_batch(cfg), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_itm'])


@pytest.mark.parametrize('sampler',
                         [dict(type='itc-hard'),
                          dict(type='random')])
@pytest.mark.slow
def test_training_with_itc_and_a_sampler(nano_config, nano_data, sampler):
    """MIR + ITM + MLM + ITC train together; ITC-hard pairs by the ITC
    similarities of the batch; all losses finite and falling."""
    cfg = copy.deepcopy(nano_config.model)
    cfg.heads.itc = dict(
        type='ITCHead', visual_channels=128, text_channels=128, embed_dim=32)
    cfg.itm_sampler = dict(sampler, neg_ratio=0.5)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    history = train_steps(model, train_batch(nano_config), steps=8, lr=1e-3)
    assert set(history[0]) >= {
        'loss_mir', 'loss_itm', 'loss_mlm', 'loss_itc', 'itc_acc'
    }
    for key in ('loss_itc', 'loss_mlm', 'loss_mir'):
        assert history[-1][key] < history[0][key], key
