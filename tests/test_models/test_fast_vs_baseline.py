"""The fast path and the baseline mode compute the same losses and scores."""
import copy

import pytest
import torch

from mvlt.registry import MODELS
from mvlt.utils import register_all_modules
from mvlt.utils.benchmark import baseline_config, synthetic_samples

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
    base = MODELS.build(copy.deepcopy(baseline_config(cfg).model))
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


def assert_same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert torch.allclose(left[key].float(), right[key].float(),
                              **TOL), (key, left[key], right[key])


def test_baseline_switches(cfg):
    fast, base = build_pair(cfg)
    attn = [m for m in base.modules() if hasattr(m, 'attn_impl')]
    assert attn and all(m.attn_impl == 'eager' for m in attn)
    assert base.heads['mlm'].logits_at == 'all'
    assert all(m.attn_impl == 'sdpa' for m in fast.modules()
               if hasattr(m, 'attn_impl'))
    assert fast.heads['mlm'].logits_at == 'masked'
    # One switch flips a built model both ways.
    fast.set_compute_mode('baseline')
    assert fast.heads['mlm'].logits_at == 'all'
    assert fast.backbone.stages[0].blocks[0].attn.attn_impl == 'eager'
    fast.set_compute_mode('fast')
    assert fast.heads['mlm'].logits_at == 'masked'
    assert fast.backbone.stages[0].blocks[0].attn.attn_impl == 'sdpa'
    with pytest.raises(ValueError, match='compute_mode'):
        fast.set_compute_mode('turbo')


def test_training_losses_and_gradients_match(cfg):
    fast, base = build_pair(cfg)
    fast.train()
    base.train()
    inputs = make_inputs(fast, True)
    # Captions of at most 20 tokens in L = 32: the fast path cuts columns.
    assert inputs['text_length'] <= 20
    losses = {}
    for name, model in (('fast', fast), ('base', base)):
        out = model.loss(inputs)
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
    assert_same(fast.loss(inputs), fast.loss(full))


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
        base_out = base.predict_outputs(inputs, tasks=('itm', ))
    # Fast: only the ITM head, the [CLS] query in the last block, [PAD]
    # columns cut; baseline: every head.
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


def _compiled_losses(cfg, backend: str) -> tuple:
    """Losses of a model built with ``compile=dict(backend=...)`` (the
    switch ``--compile`` and ``model.compile`` use) and of the same weights
    eager, on the same batch."""
    fast, _ = build_pair(cfg)
    compiled_cfg = copy.deepcopy(cfg.model)
    compiled_cfg.compile = dict(backend=backend)
    compiled_model = MODELS.build(compiled_cfg)
    compiled_model.load_state_dict(fast.state_dict())
    fast.train()
    compiled_model.train()
    inputs = make_inputs(fast, True)
    eager = fast(inputs, mode='loss')
    compiled = compiled_model(inputs, mode='loss')
    assert compiled_model._compiled_forward is not None
    return compiled_model, eager, compiled


def test_compile_graph_gives_same_losses(cfg):
    """Dynamo + AOT autograd capture of the training forward and backward
    (the graph ``--compile`` hands to inductor)."""
    torch._dynamo.reset()
    fast, eager, compiled = _compiled_losses(cfg, 'aot_eager')
    assert_same({
        k: v.detach()
        for k, v in eager.items()
    }, {
        k: v.detach()
        for k, v in compiled.items()
    })
    sum(v for k, v in compiled.items() if k.startswith('loss')).backward()
    assert fast.backbone.stages[0].patch_embed.proj.weight.grad is not None
    # A deep copy (e.g. an EMA model) compiles its own forward.
    twin = copy.deepcopy(fast)
    twin(make_inputs(twin, True), mode='loss')
    assert twin._compiled_forward[0] == id(twin)
    with pytest.raises(TypeError, match='compile'):
        MODELS.build(dict(copy.deepcopy(cfg.model), compile='yes'))


@pytest.mark.slow
def test_compile_inductor_gives_same_losses(cfg):
    """torch.compile with its default inductor backend, as ``--compile``
    runs it (forward only: compiling the backward as well takes minutes on
    two CPU cores)."""
    torch._dynamo.reset()
    _, eager, compiled = _compiled_losses(cfg, 'inductor')
    assert_same({
        k: v.detach()
        for k, v in eager.items()
    }, {
        k: v.detach()
        for k, v in compiled.items()
    })


def test_gelu_linear_matches_autograd_and_saves_memory():
    from mvlt.models.layers.gelu_linear import gelu_linear
    from mvlt.utils.benchmark import PeakMemory
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
    # With autograd it is the module itself (gradients flow).
    out = fused_linear(x, layer, 'gelu')
    out.sum().backward()
    assert layer.weight.grad is not None
    with pytest.raises(ValueError, match='activation'):
        fused_linear(x, layer, 'relu')
