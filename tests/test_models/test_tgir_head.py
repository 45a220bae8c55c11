"""The TGIR head on the joint pass: its loss trains the encoder and the ITC
image tower, its queries come through MVLT.embed_composed, and
tools/train.py / tools/test.py run the synthetic FashionIQ config."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from conftest import REPO
from mvlt.datasets import FashionIQDataset
from mvlt.datasets.synthetic import write_synthetic_fashioniq
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules

CONFIG = osp.join(REPO, 'configs', 'mvlt', 'synthetic',
                  'tgir_synthetic_finetune.py')


@pytest.fixture(scope='module')
def fashioniq(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fashioniq'))
    write_synthetic_fashioniq(
        root,
        copies=dict(train=1, val=1),
        pairs_per_image=dict(train=1, val=1),
        categories=('dress', 'toptee'))
    return root


def _cfg(root: str) -> Config:
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.model.data_preprocessor.tokenizer.vocab_file = osp.join(
        root, 'vocab.txt')
    return cfg


def _batch(cfg: Config, root: str, count: int = 8) -> dict:
    register_all_modules()
    dataset = FashionIQDataset(
        data_root=root,
        split='train',
        categories=('dress', 'toptee'),
        pipeline=cfg.train_dataloader.dataset.pipeline)
    return pseudo_collate([dataset[i] for i in range(0, 8 * count, 8)])


def test_loss_trains_query_and_gallery_towers(fashioniq):
    cfg = _cfg(fashioniq)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(_batch(cfg, fashioniq), True)
    inputs = data['inputs']
    assert inputs['gallery_images'].shape == inputs['images'].shape
    assert 'mlm_positions' not in inputs  # no masking for TGIR
    losses = model.loss(**data)
    assert set(losses) == {'loss_tgir', 'tgir_acc', 'tgir_temperature'}
    assert torch.isfinite(losses['loss_tgir'])
    losses['loss_tgir'].backward()
    for name in ('heads.tgir.text_proj.weight', 'heads.itc.visual_proj.weight',
                 'backbone.stages.0.patch_embed.proj.weight',
                 'backbone.text_embeddings.word_embeddings.weight'):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    # The ITC text tower is not part of the TGIR objective.
    assert model.heads.itc.text_proj.weight.grad is None


def test_embed_composed_is_the_predict_path(fashioniq):
    cfg = _cfg(fashioniq)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    inputs = model.data_preprocessor(_batch(cfg, fashioniq, 4),
                                     False)['inputs']
    queries = model.embed_composed(
        inputs['images'],
        inputs['input_ids'],
        inputs['attention_mask'],
        batch_size=3)
    assert queries.shape == (4, 64)
    assert torch.allclose(queries.norm(dim=1), torch.ones(4), atol=1e-5)
    gallery = model.embed_images(inputs['gallery_images'])
    assert gallery.shape == (4, 64)
    # text_proj starts at zero: the query is the ITC image projection of
    # the joint pass's visual tokens.
    feats = model.extract_feat(inputs)
    pooled = feats.visual[-1].flatten(2).mean(dim=2)
    expected = torch.nn.functional.normalize(
        model.heads.itc.visual_proj(pooled), dim=-1)
    assert torch.allclose(queries, expected, atol=1e-5)


def test_needs_an_itc_head(fashioniq):
    cfg = _cfg(fashioniq)
    cfg.model.heads.itc = None
    with pytest.raises(KeyError, match="add model.heads.itc"):
        MODELS.build(cfg.model)
    cfg = _cfg(fashioniq)
    model = MODELS.build(cfg.model)
    del model.heads['tgir']
    with pytest.raises(KeyError, match='embed_composed needs the'):
        model.embed_composed(
            torch.zeros(1, 3, 64, 64), torch.ones(1, 4, dtype=torch.long),
            torch.ones(1, 4, dtype=torch.long))


@pytest.mark.slow
def test_train_and_test_tools_print_the_table(fashioniq, tmp_path):
    work = str(tmp_path)
    options = [
        '--cfg-options', f'data_root={fashioniq}',
        f'model.data_preprocessor.tokenizer.vocab_file={fashioniq}/vocab.txt',
        f'train_dataloader.dataset.data_root={fashioniq}',
        f'test_dataloader.dataset.data_root={fashioniq}',
        "train_dataloader.dataset.categories=['dress','toptee']",
        "test_dataloader.dataset.categories=['dress','toptee']",
        'train_cfg.max_iters=2', 'load_from=None'
    ]
    env = dict(__import__('os').environ, PYTHONPATH=REPO)
    run = dict(cwd=REPO, env=env, capture_output=True, text=True)
    train = subprocess.run(
        [sys.executable, 'tools/train.py', CONFIG, '--work-dir', work] +
        options, **run)
    assert train.returncode == 0, train.stderr[-3000:]
    test = subprocess.run([
        sys.executable, 'tools/test.py', CONFIG,
        osp.join(work, 'iter_2.pth'), '--work-dir', work
    ] + options[:-1], **run)
    assert test.returncode == 0, test.stderr[-3000:]
    log = test.stdout + test.stderr
    for row in ('dress (composed)', 'toptee (text-only)', 'mean (image-only)'):
        assert row in log, log[-3000:]
    assert 'R@10' in log and 'R@50' in log
