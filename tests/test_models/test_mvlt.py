"""The MVLT model: losses, objectives switches, predict modes, errors."""
import copy
import logging

import pytest
import torch

from conftest import train_batch, train_steps
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules

register_all_modules()


@pytest.mark.slow
def test_each_loss_is_finite_and_decreases_when_overfitting(nano_config):
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(nano_config.model))
    history = train_steps(
        model, train_batch(nano_config), steps=40, lr=2e-3, fixed_inputs=True)
    for key in ('loss_mir', 'loss_itm', 'loss_mlm'):
        values = [h[key] for h in history]
        assert all(torch.isfinite(torch.tensor(values)))
        assert values[-1] < 0.6 * values[0], (key, values[0], values[-1])


def test_parameter_count_of_tiny_with_all_heads(tmp_path):
    from mmengine.config import Config

    # A vocabulary file of BERT-base size (30,522 entries), made up locally.
    vocab = tmp_path / 'vocab.txt'
    words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    words += [f'w{i}' for i in range(30522 - len(words))]
    vocab.write_text('\n'.join(words) + '\n')
    cfg = Config.fromfile('configs/_base_/models/mvlt_pvt-tiny.py')
    cfg.model.data_preprocessor.tokenizer = dict(vocab_file=str(vocab))
    cfg.model.heads.category = dict(type='CategoryHead')
    model = MODELS.build(cfg.model)
    counts = {
        name: sum(p.numel() for p in part.parameters())
        for name, part in [('backbone', model.backbone)] +
        list(model.heads.items())
    }
    total = sum(p.numel() for p in model.parameters())
    logging.getLogger(__name__).warning(
        'PVT-VL tiny + all heads (vocabulary %d): %d parameters; by part: '
        '%s', model.backbone.vocab_size, total, counts)
    print(f'\nMVLT PVT-VL tiny + MIR/ITM/MLM/category heads: {total:,} '
          f'parameters (vocabulary {model.backbone.vocab_size}); {counts}')
    assert model.backbone.vocab_size == 30522
    # The encoder without the word-piece table is PVT-Tiny sized (~13M).
    table = model.backbone.word_embeddings.weight.numel()
    assert 10e6 < counts['backbone'] - table < 16e6
    # The MLM decoder is tied to the word embedding: counted once.
    assert model.heads.mlm.decoder.weight is \
        model.backbone.word_embeddings.weight


def test_objectives_can_be_switched_off(nano_config):
    cfg = copy.deepcopy(nano_config.model)
    cfg.heads.mir = None
    cfg.heads.mlm = None
    cfg.predict_tasks = None
    model = MODELS.build(cfg)
    assert set(model.heads) == {'itm'}
    data = model.data_preprocessor(train_batch(nano_config), training=True)
    losses = model(**data, mode='loss')
    assert set(k for k in losses if k.startswith('loss')) == {'loss_itm'}


def test_predict_runs_only_requested_heads(nano_config):
    cfg = copy.deepcopy(nano_config.model)
    cfg.predict_tasks = ('itm', )
    model = MODELS.build(cfg).eval()
    called = []
    for name, head in model.heads.items():
        head.register_forward_hook(lambda *a, name=name: called.append(name))
    data = model.data_preprocessor(train_batch(nano_config), training=False)
    with torch.no_grad():
        samples = model(**data, mode='predict')
    assert called == ['itm']
    assert 0 <= float(samples[0].itm_score) <= 1
    # MIR alone needs no text: the encoder runs on the images only.
    outputs = model.predict_outputs(data['inputs'], tasks=('mir', ))
    assert outputs['reconstruction'].shape == (8, 3, 64, 64)
    # predict honours the tasks it is given, whatever predict_tasks says.
    called.clear()
    with torch.no_grad():
        samples = model.predict(data['inputs'], tasks=('mir', 'itm'))
    assert sorted(called) == ['itm', 'mir']
    assert 'reconstruction' in samples[0] and 'mlm_logits' not in samples[0]


def test_tensor_mode_returns_features(nano_config):
    model = MODELS.build(copy.deepcopy(nano_config.model)).eval()
    data = model.data_preprocessor(train_batch(nano_config), training=False)
    feats = model(**data, mode='tensor')
    assert feats.visual[0].shape == (8, 16, 16, 16)
    assert feats.text[3].shape == (8, 32, 128)


def test_preprocessor_masks_images_and_text(nano_config):
    model = MODELS.build(copy.deepcopy(nano_config.model))
    raw = train_batch(nano_config)
    data = model.data_preprocessor(raw, training=True)['inputs']
    mask = data['image_mask']
    filled = data['images'].permute(1, 0, 2, 3)[:, mask]
    assert torch.all(filled == 1e-6)
    assert abs(mask.float().mean().item() - 0.5) < 1e-6
    kept = data['images'].permute(1, 0, 2, 3)[:, ~mask]
    assert torch.equal(kept, data['target_images'].permute(1, 0, 2, 3)[:,
                                                                       ~mask])
    # One row per sample: the model pairs images with captions
    # (MVLT.itm_sampler), the preprocessor only masks.
    assert data['images'].shape[0] == data['input_ids'].shape[0] == 8
    assert 'itm_labels' not in data and data['mlm_labels'].shape[0] == 8
    # Reproducible from the preprocessor's seeded generator state.
    state = model.data_preprocessor.rng_state()
    again = model.data_preprocessor(raw, training=True)['inputs']
    model.data_preprocessor.load_rng_state(state)
    replay = model.data_preprocessor(raw, training=True)['inputs']
    assert torch.equal(again['image_mask'], replay['image_mask'])
    assert torch.equal(again['input_ids'], replay['input_ids'])


def test_vocabulary_size_mismatch_is_a_clear_error(nano_config):
    cfg = copy.deepcopy(nano_config.model)
    cfg.backbone.vocab_size = 30522
    with pytest.raises(
            ValueError,
            match='vocabulary has .* entries but '
            'model.backbone.vocab_size is 30522'):
        MODELS.build(cfg)


def test_unknown_head_names_in_objectives(nano_config):
    cfg = copy.deepcopy(nano_config.model)
    cfg.train_objectives = ('itm', 'itc')
    with pytest.raises(KeyError, match="names \\['itc'\\]"):
        MODELS.build(cfg)


def test_missing_vocabulary_says_what_to_pass(nano_config):
    cfg = copy.deepcopy(nano_config.model)
    cfg.data_preprocessor.tokenizer = dict(vocab_file='/nowhere/vocab.txt')
    with pytest.raises(FileNotFoundError, match='Nothing is downloaded'):
        MODELS.build(cfg)
