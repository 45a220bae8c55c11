"""PVT-VL backbone: shapes, attention equivalence, padding mask, modalities."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import REPO
from mvlt.models.backbones import PVTVL
from mvlt.models.layers import (PVTVLBlock, SpatialReductionAttention,
                                eager_attention)

STRIDES = (4, 8, 16, 32)
DEMO_MODEL = osp.join(REPO, 'configs', '_base_', 'models',
                      'mvlt_synthetic-demo.py')
WIDTHS = (64, 128, 320, 512)


def _inputs(batch=1, size=256, text_len=16, vocab=30522, pad_from=None):
    torch.manual_seed(0)
    images = torch.randn(batch, 3, size, size)
    ids = torch.randint(5, vocab, (batch, text_len))
    mask = torch.ones(batch, text_len, dtype=torch.long)
    if pad_from is not None:
        ids[:, pad_from:] = 0
        mask[:, pad_from:] = 0
    return images, ids, mask


@pytest.mark.parametrize('arch', ['tiny', 'small', 'medium', 'large'])
@pytest.mark.parametrize('size', [256, 192])
def test_output_shapes_every_preset(arch, size):
    model = PVTVL(arch=arch, img_size=256, text_len=16).eval()
    images, ids, mask = _inputs(size=size)
    with torch.no_grad():
        out = model(images, ids, mask)
    assert len(out.visual) == 4 and len(out.text) == 4
    for visual, text, stride, width in zip(out.visual, out.text, STRIDES,
                                           WIDTHS):
        assert visual.shape == (1, width, size // stride, size // stride)
        assert text.shape == (1, 16, width)
    expected_depths = dict(
        tiny=(2, 2, 2, 2),
        small=(3, 4, 6, 3),
        medium=(3, 4, 18, 3),
        large=(3, 8, 27, 3))[arch]
    assert tuple(len(s.blocks) for s in model.stages) == expected_depths


def test_table1_settings_of_tiny():
    model = PVTVL(arch='tiny')
    settings = model.arch_settings
    assert settings['embed_dims'] == (64, 128, 320, 512)
    assert settings['patch_sizes'] == (4, 2, 2, 2)
    assert settings['strides'] == (4, 2, 2, 2)
    assert settings['num_heads'] == (1, 2, 5, 8)
    assert settings['mlp_ratios'] == (8, 8, 4, 4)
    assert settings['sr_ratios'] == (8, 4, 2, 1)
    assert model.stages[0].blocks[0].attn.sr.stride == (8, 8)


def test_custom_arch_dict_and_unknown_arch():
    # The demo model's arch dict (configs/_base_/models/).
    arch = Config.fromfile(DEMO_MODEL).model.backbone.arch.to_dict()
    model = PVTVL(
        arch=arch, img_size=64, text_len=8, vocab_size=50, text_hidden=16)
    out = model(torch.randn(2, 3, 64, 64), torch.randint(0, 50, (2, 8)))
    assert [v.shape[1] for v in out.visual] == list(arch['embed_dims'])
    assert model.arch_settings['sr_ratios'] == arch['sr_ratios']
    with pytest.raises(KeyError, match='unknown arch'):
        PVTVL(arch='huge')
    with pytest.raises(KeyError, match='unknown arch keys'):
        PVTVL(arch=dict(embed_dim=(1, 2, 3, 4)))


def test_sdpa_matches_plain_softmax_attention():
    torch.manual_seed(0)
    attn = SpatialReductionAttention(64, num_heads=2, sr_ratio=2).eval()
    x = torch.randn(3, 10 + 64, 64)
    text_mask = torch.ones(3, 10, dtype=torch.bool)
    text_mask[1, 6:] = False
    with torch.no_grad():
        fast = attn(x, 10, (8, 8), text_mask)
        attn.attn_impl = 'eager'
        plain = attn(x, 10, (8, 8), text_mask)
    assert torch.allclose(fast, plain, atol=1e-5)
    # The eager path itself is softmax(QK^T / sqrt(d)) V.
    q, k, v = torch.randn(3, 2, 5, 4, 8).unbind(0)
    reference = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1) @ v
    assert torch.allclose(eager_attention(q, k, v), reference, atol=1e-6)


def test_whole_backbone_sdpa_equals_eager():
    images, ids, mask = _inputs(batch=2, size=64, pad_from=10)
    fast = PVTVL(img_size=64, text_len=16).eval()
    eager = PVTVL(img_size=64, text_len=16, attn_impl='eager').eval()
    eager.load_state_dict(fast.state_dict())
    with torch.no_grad():
        a, b = fast(images, ids, mask), eager(images, ids, mask)
    for x, y in zip(a.visual + a.text, b.visual + b.text):
        assert torch.allclose(x, y, atol=1e-5)


def test_key_padding_mask_hides_pad_tokens():
    images, ids, mask = _inputs(batch=1, size=64, pad_from=8)
    model = PVTVL(img_size=64, text_len=16).eval()
    changed = ids.clone()
    changed[:, 8:] = 7  # different content at padded positions
    with torch.no_grad():
        a = model(images, ids, mask)
        b = model(images, changed, mask)
    assert torch.allclose(a.visual[3], b.visual[3], atol=1e-5)
    assert torch.allclose(a.text[3][:, :8], b.text[3][:, :8], atol=1e-5)
    # Without the mask (the reference behaviour) pad tokens leak in.
    model.use_key_padding_mask = False
    with torch.no_grad():
        c = model(images, ids, mask)
        d = model(images, changed, mask)
    assert not torch.allclose(c.visual[3], d.visual[3], atol=1e-5)


def test_single_modality_passes():
    images, ids, mask = _inputs(batch=2, size=64)
    model = PVTVL(img_size=64, text_len=16).eval()
    with torch.no_grad():
        image_only = model(images=images)
        text_only = model(input_ids=ids, attention_mask=mask)
    assert image_only.text is None and len(image_only.visual) == 4
    assert image_only.visual[3].shape == (2, 512, 2, 2)
    assert text_only.visual is None and text_only.text[3].shape == (2, 16, 512)
    with pytest.raises(ValueError, match='needs images, input_ids or both'):
        model()


def test_position_embedding_interpolation_and_error():
    model = PVTVL(img_size=64, text_len=16).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 96, 128))
    assert out.visual[0].shape[-2:] == (24, 32)
    strict = PVTVL(img_size=64, text_len=16, interpolate_pos_embed=False)
    with pytest.raises(ValueError, match='interpolate_pos_embed'):
        strict(torch.randn(1, 3, 96, 96))
    with pytest.raises(ValueError, match='exceed text_len'):
        model(input_ids=torch.zeros(1, 17, dtype=torch.long))


def test_drop_path_is_linear_over_blocks():
    model = PVTVL(arch='tiny', drop_path_rate=0.1)
    rates = [
        getattr(b.drop_path, 'drop_prob', 0.0) for s in model.stages
        for b in s.blocks
    ]
    assert rates[0] == 0.0 and abs(rates[-1] - 0.1) < 1e-6
    assert all(a <= b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize(
    'with_cp, drop_rate, chunk',
    [(True, 0.1, 512), ((True, False, True, False), 0.1, 512),
     (True, 0.0, 100)])
def test_activation_checkpointing_gives_the_same_losses_and_gradients(
        with_cp, drop_rate, chunk, monkeypatch):
    """with_cp recomputes the blocks in backward (dropout and stochastic
    depth replay their random draws): same outputs and gradients. Without
    MLP dropout the MLP of a checkpointed block is recomputed in chunks of
    ``cp_mlp_chunk_size`` tokens (stage 1 here: 16 x 16 patches + 16 text
    tokens = 272, three chunks of at most 100)."""
    arch = dict(
        embed_dims=(16, 32, 64, 128),
        depths=(1, 2, 1, 1),
        num_heads=(1, 2, 2, 4))
    pieces = []
    mlp = PVTVLBlock._mlp

    def counted(self, x):
        pieces.append(x.shape[1])
        return mlp(self, x)

    monkeypatch.setattr(PVTVLBlock, '_mlp', counted)
    outputs = []
    for flag in (False, with_cp):
        torch.manual_seed(0)
        model = PVTVL(
            arch=arch,
            img_size=64,
            text_len=16,
            vocab_size=50,
            text_hidden=32,
            drop_rate=drop_rate,
            drop_path_rate=0.2,
            with_cp=flag,
            cp_mlp_chunk_size=chunk).train()
        torch.manual_seed(1)
        images = torch.randn(2, 3, 64, 64)
        ids = torch.randint(1, 50, (2, 16))
        pieces.clear()
        feats = model(images, ids, torch.ones_like(ids))
        loss = sum(f.square().mean() for f in feats.visual + feats.text)
        loss.backward()
        outputs.append((loss.detach(), {
            name: p.grad.clone()
            for name, p in model.named_parameters() if p.grad is not None
        }))
    # The forward's MLP inputs (recomputations come in backward).
    assert (272 in pieces) == (drop_rate > 0)
    assert (100 in pieces) == (drop_rate == 0)
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=1e-6,
                               atol=0)
    assert outputs[0][1].keys() == outputs[1][1].keys()
    for name, grad in outputs[0][1].items():
        assert torch.allclose(grad, outputs[1][1][name], atol=1e-6), name
    with pytest.raises(ValueError, match='four bools'):
        PVTVL(arch=arch, img_size=64, text_len=16, with_cp=(True, False))
