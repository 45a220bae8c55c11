"""The fast path and the baseline configuration compute the same losses and
scores."""
import copy

import pytest
import torch
from benchmark_modes.measure import synthetic_samples

from conftest import baseline_of
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules

TOL = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope='module')
def cfg(nano_config):
    register_all_modules()
    cfg = copy.deepcopy(nano_config)
    # Dropout draws depend on tensor shapes, and the fast path cuts [PAD]
    # columns; without dropout both modes see the same numbers.
    cfg.model.backbone.text_dropout = 0.0
    cfg.model.backbone.drop_path_rate = 0.0
    return cfg


def build_pair(cfg):
    """Fast model and its baseline counterpart with the same weights."""
    torch.manual_seed(0)
    fast = MODELS.build(copy.deepcopy(cfg.model))
    base = MODELS.build(copy.deepcopy(baseline_of(cfg).model))
    base.load_state_dict(fast.state_dict())
    return fast, base


def make_inputs(model, training: bool, caption_len=(4, 20), seed=1):
    data = synthetic_samples(
        8,
        64,
        32,
        vocab_size=model.data_preprocessor.vocab_size,
        caption_len=caption_len,
        seed=seed)
    return model.data_preprocessor(data, training)['inputs']


def loss_with_draws(model, inputs: dict, state: torch.Tensor) -> dict:
    """``model``'s losses with its random draws (the ITM pairs the loss
    draws from the preprocessor's generator) started from ``state``, so
    that models compared on one batch draw the same pairs."""
    model.data_preprocessor.load_rng_state(state)
    return model(inputs, mode='loss')


def assert_same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert torch.allclose(left[key].float(), right[key].float(),
                              **TOL), (key, left[key], right[key])


def test_baseline_is_configuration(cfg):
    """The baseline is per-module options, each decided once at build."""
    fast, base = build_pair(cfg)
    base_attn = [m for m in base.modules() if hasattr(m, 'attn_impl')]
    assert base_attn and all(m.attn_impl == 'eager' for m in base_attn)
    assert all(not m.onednn for m in base.modules() if hasattr(m, 'onednn'))
    assert not any(block.recompute_gelu for stage in base.backbone.stages
                   for block in stage.blocks)
    assert base.heads['mlm'].logits_at == 'all'
    assert not base.trim_padding
    assert set(base.predict_tasks) == set(base.heads)
    assert all(m.attn_impl == 'sdpa' for m in fast.modules()
               if hasattr(m, 'attn_impl'))
    assert fast.heads['mlm'].logits_at == 'masked'
    assert fast.trim_padding
    assert not hasattr(fast, 'set_compute_mode')


def test_training_losses_and_gradients_match(cfg):
    fast, base = build_pair(cfg)
    fast.train()
    base.train()
    inputs = make_inputs(fast, True)
    # Captions of at most 20 tokens in L = 32: the fast path cuts columns.
    assert inputs['text_length'] <= 20
    state = fast.data_preprocessor.rng_state()
    losses = {}
    for name, model in (('fast', fast), ('base', base)):
        out = loss_with_draws(model, inputs, state)
        sum(v for k, v in out.items() if k.startswith('loss')).backward()
        losses[name] = {k: v.detach() for k, v in out.items()}
    assert_same(losses['fast'], losses['base'])
    grads_fast = dict(fast.named_parameters())
    for name, param in base.named_parameters():
        other = grads_fast[name].grad
        if param.grad is None:
            assert other is None or not other.any(), name
            continue
        assert torch.allclose(param.grad, other, atol=1e-5, rtol=1e-3), name


def test_padding_trim_leaves_losses_unchanged(cfg):
    fast, _ = build_pair(cfg)
    fast.train()
    inputs = make_inputs(fast, True, caption_len=(3, 9), seed=3)
    assert inputs['text_length'] <= 9
    trimmed = fast._trim_padding(inputs, allow_sync=False)
    keep = -(-inputs['text_length'] // 8) * 8  # a multiple of 8
    assert trimmed['input_ids'].shape[1] == keep < 32
    assert int(trimmed['mlm_positions'].max()) < keep
    full = dict(inputs)
    full.pop('text_length')
    assert fast._trim_padding(full, allow_sync=False) is full
    state = fast.data_preprocessor.rng_state()
    assert_same(
        loss_with_draws(fast, inputs, state),
        loss_with_draws(fast, full, state))


def test_retrieval_scores_match(cfg):
    fast, base = build_pair(cfg)
    fast.eval()
    base.eval()
    calls = []
    fast.backbone.register_forward_hook(
        lambda module, args, kwargs, out: calls.append((args, kwargs)),
        with_kwargs=True)
    inputs = make_inputs(fast, False, caption_len=(4, 12))
    with torch.no_grad():
        fast_out = fast.predict_outputs(inputs, tasks=('itm', ))
        base_out = base.predict_outputs(inputs)
    # Fast: only the ITM head, the [CLS] query in the last block, [PAD]
    # columns cut; baseline: every head (its predict_tasks).
    assert set(fast_out) == {'itm_score'}
    assert {'itm_score', 'reconstruction', 'mlm_logits'} <= set(base_out)
    (args, kwargs), = calls
    assert kwargs.get('text_queries') == 1
    longest = int(inputs['attention_mask'].sum(dim=1).max())
    assert args[1].shape[1] == -(-longest // 8) * 8 < 32
    assert torch.allclose(fast_out['itm_score'], base_out['itm_score'], **TOL)


def test_text_queries_are_exact(cfg):
    fast, _ = build_pair(cfg)
    fast.eval()
    inputs = make_inputs(fast, False)
    with torch.no_grad():
        full = fast.backbone(inputs['images'], inputs['input_ids'],
                             inputs['attention_mask'])
        cls = fast.backbone(
            inputs['images'],
            inputs['input_ids'],
            inputs['attention_mask'],
            text_queries=1)
    assert cls.visual is None
    assert cls.text[-1].shape[1] == 1
    for early, reference in zip(cls.text[:-1], full.text[:-1]):
        assert torch.equal(early, reference)
    assert torch.allclose(cls.text[-1], full.text[-1][:, :1], **TOL)
    with pytest.raises(ValueError, match='text_queries'):
        fast.backbone(inputs['images'], None, None, text_queries=1)


def _compiled_losses(cfg, compile: dict) -> tuple:
    """Losses of a model built with ``compile`` (the option ``--compile``
    and ``model.compile`` set) and of the same weights eager, on the same
    training batch."""
    fast, _ = build_pair(cfg)
    compiled_cfg = copy.deepcopy(cfg.model)
    compiled_cfg.compile = compile
    compiled_model = MODELS.build(compiled_cfg)
    compiled_model.load_state_dict(fast.state_dict())
    fast.train()
    compiled_model.train()
    inputs = make_inputs(fast, True)
    state = fast.data_preprocessor.rng_state()
    eager = loss_with_draws(fast, inputs, state)
    compiled = loss_with_draws(compiled_model, inputs, state)
    assert_same({
        k: v.detach()
        for k, v in eager.items()
    }, {
        k: v.detach()
        for k, v in compiled.items()
    })
    return compiled_model, eager, compiled


def _loss(losses: dict) -> torch.Tensor:
    return sum(v for k, v in losses.items() if k.startswith('loss'))


@pytest.mark.slow
def test_compile_regions_give_same_losses(cfg):
    """Dynamo + AOT autograd capture (the graphs ``--compile`` hands to
    inductor) of every block on its own, and of the whole forward."""
    torch._dynamo.reset()
    model, eager, compiled = _compiled_losses(cfg, dict(backend='aot_eager'))
    blocks = [b for s in model.backbone.stages for b in s.blocks]
    assert all(b._compiled_call_impl is not None for b in blocks)
    assert model.compile_options['torch'] == dict(
        backend='aot_eager', dynamic=False)
    _loss(compiled).backward()
    assert blocks[0].attn.q.weight.grad is not None
    # Captions are cut to multiples of the compile bucket (32 = L here).
    assert model._trim_padding(make_inputs(model, True),
                               False)['input_ids'].shape[1] == 32
    # A deep copy (e.g. an EMA model) runs eager.
    twin = copy.deepcopy(model)
    assert all(b._compiled_call_impl is None for s in twin.backbone.stages
               for b in s.blocks)
    twin(make_inputs(twin, True), mode='loss')

    model, _, compiled = _compiled_losses(
        cfg, dict(regions='model', backend='aot_eager'))
    assert model._compiled_forward is not None
    _loss(compiled).backward()
    twin = copy.deepcopy(model)
    twin(make_inputs(twin, True), mode='loss')
    assert twin._compiled_forward[0] == id(twin)


def test_compile_option_errors(cfg):
    bad = [('yes', TypeError), (dict(regions='heads'), ValueError),
           (dict(regions=('model', 'blocks')), ValueError),
           (dict(caption_bucket=0), ValueError)]
    for option, error in bad:
        with pytest.raises(error, match='compile'):
            MODELS.build(dict(copy.deepcopy(cfg.model), compile=option))


def test_compile_defaults_and_recompile_room():
    from mvlt.models.compiling import parse_compile, recompile_scope
    assert parse_compile(False) is None
    options = parse_compile(True)
    assert options == dict(
        regions=('blocks', ),
        caption_bucket=32,
        recompile_limit=None,
        torch=dict(dynamic=False))
    limit = torch._dynamo.config.recompile_limit
    # 8 blocks x (1 + 128 / 32) caption buckets x train / eval.
    with recompile_scope(options, 8):
        assert torch._dynamo.config.recompile_limit == 8 * 5 * 2
    assert torch._dynamo.config.recompile_limit == limit


@pytest.mark.slow
def test_compile_inductor_trains_like_eager(cfg):
    """Regional compilation with inductor, the default of ``--compile``:
    the losses of two training steps (forward, backward, AdamW) equal the
    eager model's within 1e-4."""
    from mmengine.optim import build_optim_wrapper
    torch._dynamo.reset()
    fast, _ = build_pair(cfg)
    compiled_cfg = copy.deepcopy(cfg.model)
    compiled_cfg.compile = dict(backend='inductor')
    compiled = MODELS.build(compiled_cfg)
    compiled.load_state_dict(fast.state_dict())
    data = synthetic_samples(
        8,
        64,
        32,
        vocab_size=fast.data_preprocessor.vocab_size,
        caption_len=(4, 20),
        seed=1)
    losses = {}
    for name, model in (('eager', fast), ('compiled', compiled)):
        model.train()
        wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
        # Same masks in both: the preprocessor draws them from torch's RNG.
        torch.manual_seed(5)
        losses[name] = [{
            k: v.detach()
            for k, v in model.train_step(data, wrapper).items()
        } for _ in range(2)]
    for eager, compiled_losses in zip(losses['eager'], losses['compiled']):
        assert_same(eager, compiled_losses)


def test_gelu_linear_matches_autograd_and_saves_memory():
    from benchmark_modes.measure import PeakMemory

    from mvlt.models.layers.gelu_linear import gelu_linear
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(16, 256), torch.nn.Linear(256, 16)
    x = torch.randn(4, 512, 16, requires_grad=True)
    grad = torch.randn(4, 512, 16)

    def run(fused: bool) -> tuple:
        params = (x, fc1.weight, fc1.bias, fc2.weight, fc2.bias)
        for p in params:
            p.grad = None
        with PeakMemory('cpu', [fc1, fc2]) as held:
            hidden = fc1(x)
            out = gelu_linear(hidden, fc2.weight, fc2.bias) if fused else \
                fc2(torch.nn.functional.gelu(hidden))
            del hidden
        out.backward(grad)
        return out.detach(), [p.grad.clone() for p in params], held

    plain_out, plain_grads, plain_held = run(False)
    fused_out, fused_grads, fused_held = run(True)
    assert torch.equal(plain_out, fused_out)
    for left, right in zip(plain_grads, fused_grads):
        assert torch.allclose(left, right, atol=1e-6, rtol=1e-5)
    # One (4, 512, 256) float tensor (2 MiB) less kept for backward.
    saved = plain_held.end_bytes - fused_held.end_bytes
    assert saved >= 2 * 2**20
    with torch.no_grad():
        assert torch.equal(
            gelu_linear(fc1(x), fc2.weight, fc2.bias), plain_out)


def test_onednn_linear_matches_module():
    from mvlt.models.layers import fused_linear
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 96)
    x = torch.randn(3, 50, 48)
    with torch.no_grad():
        reference = layer(x)
        assert torch.allclose(fused_linear(x, layer), reference, atol=1e-5)
        assert torch.allclose(
            fused_linear(x, layer, 'gelu'),
            torch.nn.functional.gelu(reference),
            atol=1e-5)
        assert torch.equal(fused_linear(x, layer, onednn=False), reference)
    with pytest.raises(ValueError, match='activation'):
        fused_linear(x, layer, 'relu')


@pytest.mark.parametrize('rows', [150, 2])
def test_onednn_training_products_match_autograd(rows):
    """Training through oneDNN (forward and input gradient; with few rows
    the input gradient stays torch.matmul) gives F.linear's gradients."""
    from mvlt.models.layers import fused_linear, gelu_linear
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(48, 96), torch.nn.Linear(96, 48)
    x = torch.randn(rows, 48)
    grad = torch.randn(rows, 48)

    def run(onednn: bool) -> list:
        inputs = x.clone().requires_grad_()
        params = list(fc1.parameters()) + list(fc2.parameters())
        for p in params:
            p.grad = None
        if onednn:
            hidden = fused_linear(inputs, fc1, onednn=True)
            out = gelu_linear(hidden, fc2.weight, fc2.bias, onednn=True)
        else:
            out = fc2(torch.nn.functional.gelu(fc1(inputs)))
        out.backward(grad)
        return [out.detach(), inputs.grad] + [p.grad for p in params]

    for plain, onednn in zip(run(False), run(True)):
        assert torch.allclose(plain, onednn, atol=1e-5, rtol=1e-4)
