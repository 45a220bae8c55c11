"""Reference-checkpoint converter: every tensor lands where it should and the
converted model gives the reference model's logits."""
import argparse
import importlib.util
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from conftest import REPO
from mvlt.models.backbones import VLFeatures
from mvlt.models.utils import convert_reference_state_dict
from mvlt.registry import MODELS
from mvlt.utils import load_checkpoint_file, register_all_modules

LISTING = osp.join(REPO, 'tools', 'model_converters',
                   'reference_mvlt_tiny_keys.tsv')
TOOL = osp.join(REPO, 'tools', 'model_converters',
                'mvlt_reference_to_mmengine.py')
CONFIG = osp.join(REPO, 'configs', 'mvlt', 'reference_mvlt_tiny.py')
VOCAB_SIZE = 30522


def read_listing():
    rows = []
    with open(LISTING) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            name, shape, dtype = line.rstrip('\n').split('\t')
            shape = () if shape == 'scalar' else tuple(
                int(s) for s in shape.split('x'))
            rows.append((name, shape, dtype))
    return rows


def random_reference_state(seed: int = 0) -> dict:
    """A reference-layout state dict with random values of sensible scale
    (norm / BN weights near 1, positive running variances, the MLM decoder
    tied to the word embeddings as the reference saves it)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape, dtype in read_listing():
        if dtype == 'int64':
            state[name] = torch.tensor(1000)
        elif name.endswith('running_var'):
            state[name] = torch.rand(shape, generator=gen) + 0.5
        elif name.endswith('running_mean'):
            state[name] = torch.randn(shape, generator=gen) * 0.1
        elif len(shape) == 1 and name.endswith('weight'):
            state[name] = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:
            state[name] = 0.05 * torch.randn(shape, generator=gen)
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            std = 0.02 if 'embed' in name else fan_in**-0.5
            state[name] = std * torch.randn(shape, generator=gen)
    state['mlm_head.mlm_decoder.weight'] = \
        state['text_embeddings.word_embeddings.weight'].clone()
    state['text_embeddings.position_ids'] = torch.arange(512)[None]
    return state


def expected_location(name: str):
    """Where a reference tensor must land: (mvlt key, how it is derived).

    Written independently of the package's rules, by hand."""
    parts = name.split('.')
    head = parts[0]
    if name == 'text_embeddings.position_ids':
        return None, 'dropped'
    if head.startswith('text_pos_embed'):
        return f'backbone.stages.{int(head[-1]) - 1}.text_pos_embed', 'copy'
    if head.startswith('pos_embed'):
        how = 'drop_slot0' if head == 'pos_embed4' else 'copy'
        return f'backbone.stages.{int(head[-1]) - 1}.pos_embed', how
    if head.startswith('patch_embed'):
        return ('backbone.stages.{}.patch_embed.{}'.format(
            int(head[-1]) - 1, '.'.join(parts[1:])), 'copy')
    if head.startswith('text_embed') and head != 'text_embeddings':
        layer = {'0': 'proj', '1': 'norm'}[parts[1]]
        return (f'backbone.stages.{int(head[-1]) - 1}.text_embed.{layer}.'
                f'{parts[2]}', 'copy')
    if head.startswith('block'):
        return ('backbone.stages.{}.blocks.{}'.format(
            int(head[-1]) - 1, '.'.join(parts[1:])), 'copy')
    if head == 'text_embeddings':
        return 'backbone.' + name, 'copy'
    necks = {
        'mlm_head_embed': 'heads.mlm.neck',
        'itm_head_embed': 'heads.itm.neck',
        'sup_cls_head_embed': 'heads.category.category_neck',
        'sub_cls_head_embed': 'heads.category.subcategory_neck',
    }
    if head in necks:
        layer = {'0': 'proj', '1': 'norm'}[parts[1]]
        return f'{necks[head]}.layer.{layer}.{parts[2]}', 'copy'
    fcs = {
        'itm_head': 'heads.itm.fc',
        'sup_cls_head': 'heads.category.category_fc',
        'sub_cls_head': 'heads.category.subcategory_fc',
    }
    if head in fcs:
        if parts[1] == 'linear_bias':
            return f'{fcs[head]}.bias', 'fold'
        return f'{fcs[head]}.{parts[2]}', ('fold'
                                           if parts[2] == 'bias' else 'copy')
    if head == 'mlm_head':
        tail = '.'.join(parts[1:])
        mapped = {
            'bias': 'bias',
            'mlm_decoder.weight': 'decoder.weight',
            'transform.dense.weight': 'transform.0.weight',
            'transform.dense.bias': 'transform.0.bias',
            'transform.LayerNorm.weight': 'transform.2.weight',
            'transform.LayerNorm.bias': 'transform.2.bias',
        }[tail]
        return f'heads.mlm.{mapped}', 'copy'
    if head == 't2i_head':
        if parts[1] == 'score':
            return f'heads.mir.decoder.score.{parts[3]}', 'copy'
        layer = {'0': 'conv', '1': 'bn'}[parts[2]]
        return f'heads.mir.decoder.{parts[1]}.{layer}.{parts[3]}', 'copy'
    raise AssertionError(f'unexpected reference key {name}')


@pytest.fixture(scope='module')
def placeholder_vocab(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('vocab') / 'vocab.txt'
    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    tokens += [f'[unused{i}]' for i in range(VOCAB_SIZE - len(tokens))]
    path.write_text('\n'.join(tokens) + '\n')
    return str(path)


def run_tool(argv):
    spec = importlib.util.spec_from_file_location('mvlt_reference_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


@pytest.fixture(scope='module')
def reference_state() -> dict:
    return random_reference_state()


@pytest.fixture(scope='module')
def converted(tmp_path_factory, placeholder_vocab, reference_state):
    register_all_modules()
    tmp = tmp_path_factory.mktemp('convert')
    reference = reference_state
    src, dst = tmp / 'reference.pth', tmp / 'converted.pth'
    # The reference saves its command-line args next to the weights.
    torch.save(
        dict(
            model=reference,
            epoch=149,
            args=argparse.Namespace(model='pvlt_tiny', lr=2.5e-4)), src)
    run_tool([
        str(src),
        str(dst), '--cfg-options',
        f'model.data_preprocessor.tokenizer.vocab_file={placeholder_vocab}'
    ])
    return reference, load_checkpoint_file(str(dst))


def test_every_tensor_lands_where_it_should(converted):
    reference, checkpoint = converted
    state = checkpoint['state_dict']
    expected = {}
    for name, value in reference.items():
        key, how = expected_location(name)
        if how == 'dropped':
            assert name in checkpoint['meta']['dropped_keys']
            continue
        if how == 'drop_slot0':
            value = value[:, 1:]
        if how == 'fold':
            value = expected.get(key, 0) + value
        expected[key] = value
    # Nothing is left over and nothing is invented.
    assert set(state) == set(expected)
    assert checkpoint['meta']['unused_keys'] == []
    for key, value in expected.items():
        assert state[key].shape == value.shape, key
        torch.testing.assert_close(state[key], value, rtol=0, atol=1e-6)
    assert state['backbone.stages.3.pos_embed'].shape == (1, 64, 512)


# ---------------------------------------------------------------------------
# The reference forward, re-stated from the authors' public code
# (libs/pvlt.py, libs/vl_heads.py of GewelsJI/MVLT) on its own state dict.
REFERENCE_EPS = dict(
    block=1e-6,
    patch=1e-5,
    text=1e-5,
    sr=1e-5,
    head=1e-5,
    cls_head=1e-5,
    bert=1e-12)


def _ln(x, sd, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + '.weight'],
                        sd[prefix + '.bias'], eps)


def _linear(x, sd, prefix):
    return F.linear(x, sd[prefix + '.weight'], sd.get(prefix + '.bias'))


def _conv_bn(x, sd, prefix):
    x = F.conv2d(x, sd[prefix + '.0.weight'], padding=1)
    return F.batch_norm(x, sd[prefix + '.1.running_mean'],
                        sd[prefix + '.1.running_var'],
                        sd[prefix + '.1.weight'], sd[prefix + '.1.bias'],
                        False, 0.0, 1e-5)


def reference_forward(sd, images, input_ids, eps):
    heads, srs, patches = (1, 2, 5, 8), (8, 4, 2, 1), (4, 2, 2, 2)
    batch, num_text = input_ids.shape
    text = sd['text_embeddings.word_embeddings.weight'][input_ids] + \
        sd['text_embeddings.position_embeddings.weight'][:num_text] + \
        sd['text_embeddings.token_type_embeddings.weight'][0]
    text = _ln(text, sd, 'text_embeddings.LayerNorm', eps['bert'])
    x, visual_maps = images, []
    for k in range(1, 5):
        x = F.conv2d(
            x,
            sd[f'patch_embed{k}.proj.weight'],
            sd[f'patch_embed{k}.proj.bias'],
            stride=patches[k - 1])
        _, dim, h, w = x.shape
        x = _ln(
            x.flatten(2).transpose(1, 2), sd, f'patch_embed{k}.norm',
            eps['patch'])
        text = _ln(
            _linear(text, sd, f'text_embed{k}.0'), sd, f'text_embed{k}.1',
            eps['text'])
        pos = sd[f'pos_embed{k}'][:, 1:] if k == 4 else sd[f'pos_embed{k}']
        z = torch.cat([x + pos, text + sd[f'text_pos_embed{k}']], dim=1)
        for i in range(2):
            p = f'block{k}.{i}.'
            y = _ln(z, sd, p + 'norm1', eps['block'])
            nh, hd = heads[k - 1], dim // heads[k - 1]
            q = _linear(y, sd, p + 'attn.q').reshape(batch, -1, nh,
                                                     hd).transpose(1, 2)
            if srs[k - 1] > 1:
                vis = y[:, :h * w].transpose(1, 2).reshape(batch, dim, h, w)
                vis = F.conv2d(
                    vis,
                    sd[p + 'attn.sr.weight'],
                    sd[p + 'attn.sr.bias'],
                    stride=srs[k - 1])
                vis = _ln(
                    vis.flatten(2).transpose(1, 2), sd, p + 'attn.norm',
                    eps['sr'])
                y_kv = torch.cat([vis, y[:, h * w:]], dim=1)
            else:
                y_kv = y
            kv = _linear(y_kv, sd,
                         p + 'attn.kv').reshape(batch, -1, 2, nh,
                                                hd).permute(2, 0, 3, 1, 4)
            attn = (q @ kv[0].transpose(-2, -1) * hd**-0.5).softmax(-1)
            out = (attn @ kv[1]).transpose(1, 2).reshape(batch, -1, dim)
            z = z + _linear(out, sd, p + 'attn.proj')
            y = _ln(z, sd, p + 'norm2', eps['block'])
            z = z + _linear(
                F.gelu(_linear(y, sd, p + 'mlp.fc1')), sd, p + 'mlp.fc2')
        x, text = z[:, :h * w], z[:, h * w:]
        x = x.transpose(1, 2).reshape(batch, dim, h, w)
        visual_maps.append(x)
    cls = text[:, 0]
    out = {}
    for name, prefix in (('itm', 'itm_head'), ('category', 'sup_cls_head'),
                         ('subcategory', 'sub_cls_head')):
        pooled = _ln(
            _linear(cls, sd, prefix + '_embed.0'), sd, prefix + '_embed.1',
            eps['head' if name == 'itm' else 'cls_head'])
        out[name] = _linear(pooled, sd, prefix + '.linear') + \
            sd[prefix + '.linear_bias']
    tokens = _ln(
        _linear(text, sd, 'mlm_head_embed.0'), sd, 'mlm_head_embed.1',
        eps['head'])
    tokens = _ln(
        F.gelu(_linear(tokens, sd, 'mlm_head.transform.dense')), sd,
        'mlm_head.transform.LayerNorm', eps['head'])
    out['mlm'] = tokens @ sd['mlm_head.mlm_decoder.weight'].t() + \
        sd['mlm_head.bias']

    def up(x, like):
        return F.interpolate(
            x, scale_factor=2, mode='bilinear', align_corners=True)

    t = 't2i_head.'
    r1 = _conv_bn(visual_maps[1], sd, t + 'reduction1')
    r2 = _conv_bn(visual_maps[2], sd, t + 'reduction2')
    r3 = _conv_bn(visual_maps[3], sd, t + 'reduction3')
    x2 = _conv_bn(up(r3, r2), sd, t + 'conv_upsample1') * r2
    x3 = _conv_bn(up(r2, r1), sd, t + 'conv_upsample2') * _conv_bn(
        up(x2, r1), sd, t + 'conv_upsample3') * r1
    y2 = _conv_bn(
        torch.cat([x2, _conv_bn(up(r3, r2), sd, t + 'conv_upsample4')], 1), sd,
        t + 'conv_concat2')
    y3 = _conv_bn(
        torch.cat([x3, _conv_bn(up(y2, r1), sd, t + 'conv_upsample5')], 1), sd,
        t + 'conv_concat3')
    score = F.conv2d(
        _conv_bn(y3, sd, t + 'conv4'), sd[t + 'score.0.weight'],
        sd[t + 'score.0.bias'])
    out['mir'] = F.interpolate(
        score, scale_factor=8, mode='bilinear', align_corners=True)
    return out


def test_converted_model_gives_reference_logits(converted, placeholder_vocab):
    reference, checkpoint = converted
    cfg = Config.fromfile(CONFIG)
    cfg.model.data_preprocessor.tokenizer.vocab_file = placeholder_vocab
    model = MODELS.build(cfg.model).eval()
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 256, 256, generator=gen)
    input_ids = torch.randint(5, VOCAB_SIZE, (2, 128), generator=gen)
    input_ids[:, 0] = 2  # [CLS]
    input_ids[0, 40:] = 0  # [PAD]s take part in attention, as in the reference
    batch = dict(
        images=images,
        input_ids=input_ids,
        attention_mask=(input_ids != 0).long())
    with torch.no_grad():
        feats = model.extract_feat(batch)
        ours = dict(
            itm=model.heads.itm(feats),
            mlm=model.heads.mlm(feats.text[-1]),
            mir=model.heads.mir.decoder(feats.visual))
        ours['category'], ours['subcategory'] = model.heads.category(feats)
        # PVT-VL keeps PVT v1's epsilons (1e-6 in the blocks, 1e-5 in the
        # embeddings and the spatial reduction) and reference_mvlt_tiny.py
        # sets the heads' to the reference's: the outputs agree to float
        # precision with the reference's own epsilons.
        theirs = reference_forward(reference, images, input_ids, REFERENCE_EPS)
    for name in ('itm', 'mlm', 'mir', 'category', 'subcategory'):
        torch.testing.assert_close(
            ours[name], theirs[name], rtol=1e-4, atol=1e-4, msg=name)


def test_untied_decoder_and_unknown_keys_are_refused(reference_state):
    reference = dict(reference_state)
    reference['mlm_head.mlm_decoder.weight'] = reference[
        'mlm_head.mlm_decoder.weight'] + 1
    with pytest.raises(ValueError, match='ties them'):
        convert_reference_state_dict(reference)
    reference = dict(reference_state)
    reference['i2t_head.linear.weight'] = torch.zeros(2, 2)
    result = convert_reference_state_dict(reference)
    assert result.unused == ['i2t_head.linear.weight']


def test_tool_reports_config_mismatch(tmp_path, placeholder_vocab,
                                      reference_state):
    register_all_modules()
    src = tmp_path / 'reference.pth'
    torch.save(dict(model=reference_state), src)
    vocab_option = 'model.data_preprocessor.tokenizer.vocab_file=' + \
        placeholder_vocab
    with pytest.raises(SystemExit, match='heads.category'):
        run_tool([
            str(src),
            str(tmp_path / 'out.pth'), '--cfg-options', vocab_option,
            'model.heads.category=None'
        ])
    assert not (tmp_path / 'out.pth').exists()


def test_reference_decoder_trains_in_the_mir_head():
    """The partial decoder as MIR decoder: full-size output, finite loss and
    gradients, also for a grid that is not a power of two."""
    register_all_modules()
    head = MODELS.build(
        dict(
            type='MIRHead',
            decoder=dict(
                type='ReferencePartialDecoder',
                in_channels=(16, 32, 64, 128),
                channels=8)))
    for size in (64, 96):
        visual = tuple(
            torch.randn(2, c, size // s, size // s, requires_grad=True)
            for c, s in zip((16, 32, 64, 128), (4, 8, 16, 32)))
        feats = VLFeatures(visual=visual, text=None, text_mask=None)
        batch = dict(
            target_images=torch.randn(2, 3, size, size),
            image_mask=torch.ones(2, size, size, dtype=torch.bool))
        loss = head.loss(feats, batch)['loss_mir']
        loss.backward()
        assert torch.isfinite(loss)
        assert visual[1].grad is not None and visual[0].grad is None
        assert head.predict(feats, dict(
            images=batch['target_images']))['reconstruction'].shape == (2, 3,
                                                                        size,
                                                                        size)
