"""ImageNet PVT v1 initialisation of PVT-VL (PVTPretrained)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mvlt.models.backbones import PVTVL, load_pvt_v1_weights
from mvlt.utils import register_all_modules

# PVT v1 tiny (the published classifier): widths, depths, SR ratios, patch
# sizes of stages 1-4.
WIDTHS = (64, 128, 320, 512)
SR_RATIOS = (8, 4, 2, 1)
MLP_RATIOS = (8, 8, 4, 4)
PATCHES = (4, 2, 2, 2)
CLASSIFIER_KEYS = {
    'cls_token', 'norm.weight', 'norm.bias', 'head.weight', 'head.bias'
}


def pvt_v1_state_dict(depths=(2, 2, 2, 2), img_size=224, seed=0) -> dict:
    """Random tensors in the layout of the PVT authors' ImageNet classifier
    (``pvt_tiny.pth``): position embeddings for 224 px, a class-token slot
    first in ``pos_embed4``, classifier ``head`` and final ``norm``."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    state = {}
    in_ch, grid = 3, img_size
    for k in range(4):
        dim, name = WIDTHS[k], k + 1
        grid //= PATCHES[k]
        state[f'patch_embed{name}.proj.weight'] = rand(dim, in_ch, PATCHES[k],
                                                       PATCHES[k])
        state[f'patch_embed{name}.proj.bias'] = rand(dim)
        state[f'patch_embed{name}.norm.weight'] = rand(dim)
        state[f'patch_embed{name}.norm.bias'] = rand(dim)
        slots = grid * grid + (1 if k == 3 else 0)
        state[f'pos_embed{name}'] = rand(1, slots, dim)
        for i in range(depths[k]):
            p = f'block{name}.{i}.'
            hidden = dim * MLP_RATIOS[k]
            shapes = {
                'norm1.weight': (dim, ),
                'norm1.bias': (dim, ),
                'attn.q.weight': (dim, dim),
                'attn.q.bias': (dim, ),
                'attn.kv.weight': (2 * dim, dim),
                'attn.kv.bias': (2 * dim, ),
                'attn.proj.weight': (dim, dim),
                'attn.proj.bias': (dim, ),
                'norm2.weight': (dim, ),
                'norm2.bias': (dim, ),
                'mlp.fc1.weight': (hidden, dim),
                'mlp.fc1.bias': (hidden, ),
                'mlp.fc2.weight': (dim, hidden),
                'mlp.fc2.bias': (dim, ),
            }
            if SR_RATIOS[k] > 1:
                sr = SR_RATIOS[k]
                shapes.update({
                    'attn.sr.weight': (dim, dim, sr, sr),
                    'attn.sr.bias': (dim, ),
                    'attn.norm.weight': (dim, ),
                    'attn.norm.bias': (dim, ),
                })
            for key, shape in shapes.items():
                state[p + key] = rand(*shape)
        in_ch = dim
    state['cls_token'] = rand(1, 1, 512)
    state['norm.weight'] = rand(512)
    state['norm.bias'] = rand(512)
    state['head.weight'] = rand(1000, 512)
    state['head.bias'] = rand(1000)
    return state


def small_backbone(img_size=64, depths=(2, 2, 2, 2), init_cfg=None) -> PVTVL:
    return PVTVL(
        arch=dict(depths=depths),
        img_size=img_size,
        text_len=8,
        vocab_size=50,
        text_hidden=32,
        init_cfg=init_cfg)


def bicubic(pos: torch.Tensor, size: int) -> torch.Tensor:
    """Independent expectation: (1, n*n, C) -> (1, size*size, C)."""
    side = math.isqrt(pos.shape[1])
    grid = pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid, size=(size, size), mode='bicubic', align_corners=False)
    return grid.flatten(2).transpose(1, 2)


def test_load_resizes_and_reports():
    state = pvt_v1_state_dict()
    backbone = small_backbone(img_size=64)
    text_before = {
        k: v.clone()
        for k, v in backbone.state_dict().items() if 'text' in k
    }
    report = load_pvt_v1_weights(backbone, state)
    assert report.missing == []
    assert set(report.skipped) == CLASSIFIER_KEYS
    own = backbone.state_dict()
    # Every visual tensor except the resized position embeddings is copied.
    for k in range(4):
        for suffix in ('proj.weight', 'proj.bias', 'norm.weight', 'norm.bias'):
            assert torch.equal(own[f'stages.{k}.patch_embed.{suffix}'],
                               state[f'patch_embed{k + 1}.{suffix}'])
    for key, value in state.items():
        if key.startswith('block'):
            stage, rest = key[len('block'):].split('.', 1)
            ours = own[f'stages.{int(stage) - 1}.blocks.{rest}']
            assert torch.equal(ours, value), key
    # 224 px grids 56/28/14/7 -> 64 px grids 16/8/4/2; stage 4 without its
    # class-token slot.
    for k, size in enumerate((16, 8, 4, 2)):
        source = state[f'pos_embed{k + 1}']
        if k == 3:
            source = source[:, 1:]
        torch.testing.assert_close(own[f'stages.{k}.pos_embed'],
                                   bicubic(source, size))
    assert report.resized['stages.3.pos_embed'] == ((7, 7), (2, 2))
    # The text path is untouched.
    for key, value in text_before.items():
        assert torch.equal(own[key], value), key


def test_same_size_copies_position_embeddings():
    state = pvt_v1_state_dict()
    backbone = small_backbone(img_size=224, depths=(2, 2, 2, 2))
    report = load_pvt_v1_weights(backbone, state)
    assert report.resized == {}
    assert torch.equal(backbone.stages[3].pos_embed, state['pos_embed4'][:,
                                                                         1:])
    assert torch.equal(backbone.stages[0].pos_embed, state['pos_embed1'])


def test_init_cfg_loads_checkpoint(tmp_path):
    register_all_modules()
    path = tmp_path / 'pvt_tiny.pth'
    state = pvt_v1_state_dict()
    # Some releases wrap the weights; both layouts load.
    torch.save({'model': state}, path)
    backbone = small_backbone(
        init_cfg=dict(type='PVTPretrained', checkpoint=str(path)))
    backbone.init_weights()
    assert torch.equal(backbone.stages[2].blocks[1].mlp.fc2.weight,
                       state['block3.1.mlp.fc2.weight'])


def test_missing_checkpoint_says_where_to_get_it(tmp_path):
    register_all_modules()
    backbone = small_backbone(
        init_cfg=dict(
            type='PVTPretrained', checkpoint=str(tmp_path / 'absent.pth')))
    with pytest.raises(FileNotFoundError, match='whai362/PVT'):
        backbone.init_weights()


def test_depth_mismatch():
    # A deeper checkpoint (PVT-small) leaves blocks over; they are skipped.
    state = pvt_v1_state_dict(depths=(3, 4, 6, 3))
    report = load_pvt_v1_weights(small_backbone(), state)
    assert report.missing == []
    assert 'block3.5.mlp.fc1.weight' in report.skipped
    # A shallower one leaves visual parameters uninitialised: an error
    # unless allowed.
    deeper = small_backbone(depths=(2, 2, 3, 2))
    with pytest.raises(ValueError, match='uninitialised'):
        load_pvt_v1_weights(deeper, pvt_v1_state_dict())
    report = load_pvt_v1_weights(
        deeper, pvt_v1_state_dict(), allow_missing=True)
    assert report.missing and all(
        k.startswith('stages.2.blocks.2.') for k in report.missing)


def test_width_mismatch_is_clear():
    state = pvt_v1_state_dict()
    state['block2.0.attn.q.weight'] = torch.zeros(64, 64)
    with pytest.raises(ValueError, match='block'):
        load_pvt_v1_weights(small_backbone(), state)
