"""Every config builds its model and survives MMEngine's Config.dump; the
ablation configs differ from their parent in exactly the field they name."""
import glob
import os
import os.path as osp
import subprocess
import sys
from typing import Any, Dict

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import REPO, cfg_options_args, point_vocab
from mvlt.datasets.synthetic import write_synthetic_fashiongen
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules

CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True) +
    glob.glob(
        osp.join(REPO, 'projects', '*', 'configs', '**', '*.py'),
        recursive=True) +
    glob.glob(osp.join(REPO, 'tests', 'configs', '*.py')))
CONFIGS = [c for c in CONFIGS if f'{osp.sep}_base_{osp.sep}' not in c]
PRETRAIN = osp.join(REPO, 'configs', 'mvlt', 'pretrain_fashiongen.py')
ABLATIONS = osp.join(REPO, 'configs', 'mvlt', 'ablations')

#: Ablation config -> the config fields it may (and must) change.
ABLATION_FIELDS = {
    **{
        f'pretrain_fashiongen_mask-ratio-{r}.py': [
            'model.data_preprocessor.mask_generator.mask_ratio'
        ]
        for r in ('0.1', '0.3', '0.7', '0.9')
    },
    **{
        f'pretrain_fashiongen_mask-unit-{a}.py': [
            'model.data_preprocessor.mask_generator.unit_scale'
        ]
        for a in (1, 2, 8, 16)
    },
    **{
        f'pretrain_fashiongen_mask-{kind}.py': [
            'model.data_preprocessor.mask_generator'
        ]
        for kind in ('grid', 'stroke', 'center')
    },
    'pretrain_fashiongen_itm.py': ['model.heads.mir', 'model.heads.mlm'],
    'pretrain_fashiongen_itm-mir.py': ['model.heads.mlm'],
    'pretrain_fashiongen_itm-mlm.py': ['model.heads.mir'],
    'pretrain_fashiongen_no-imagenet.py': ['model.backbone.init_cfg'],
    # Beyond the paper: only the ITM negatives and the ITC head change.
    'pretrain_fashiongen_itc-hard.py':
    ['model.itm_sampler', 'model.heads.itc'],
}


def _placeholder_vocab(path: str, size: int) -> str:
    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    tokens += [f'[unused{i}]' for i in range(size - len(tokens))]
    with open(path, 'w') as f:
        f.write('\n'.join(tokens) + '\n')
    return path


@pytest.fixture(scope='module')
def vocab_files(tmp_path_factory, nano_data) -> Dict[Any, str]:
    """vocab_size -> a vocabulary of that size; None -> the nano one."""
    tmp = tmp_path_factory.mktemp('vocab')
    return {
        None: nano_data['vocab'],
        30522: _placeholder_vocab(str(tmp / 'bert_size.txt'), 30522),
    }


def _flatten(node: Any, prefix: str = '') -> Dict[str, Any]:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f'{prefix}{key}.'))
        return out or {prefix[:-1]: {}}
    if isinstance(node, (list, tuple)):
        out = {}
        for index, value in enumerate(node):
            out.update(_flatten(value, f'{prefix}{index}.'))
        return out or {prefix[:-1]: type(node)()}
    return {prefix[:-1]: node}


def _load(path: str, monkeypatch) -> Config:
    # Project configs import their plug-in through custom_imports, which
    # needs the repository root on sys.path (dist_train.sh sets PYTHONPATH).
    monkeypatch.syspath_prepend(REPO)
    return Config.fromfile(path)


def test_configs_are_found():
    names = {osp.relpath(c, REPO) for c in CONFIGS}
    assert 'configs/mvlt/pretrain_fashiongen.py' in names
    assert 'configs/mvlt/reference_mvlt_tiny.py' in names
    found = {osp.basename(c) for c in CONFIGS if osp.dirname(c) == ABLATIONS}
    # Every ablation config declares what it changes, and nothing is lost.
    assert found == set(ABLATION_FIELDS)


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(c, REPO) for c in CONFIGS])
def test_config_builds_and_dumps(path, tmp_path, vocab_files, monkeypatch):
    register_all_modules()
    cfg = _load(path, monkeypatch)
    dumped = tmp_path / 'dumped.py'
    cfg.dump(str(dumped))  # formats with yapf
    reloaded = Config.fromfile(str(dumped))
    assert reloaded.to_dict() == cfg.to_dict()

    vocab_size = cfg.model.backbone.get('vocab_size')
    if vocab_size not in vocab_files:
        vocab_files[vocab_size] = _placeholder_vocab(
            str(tmp_path / 'vocab.txt'), vocab_size)
    point_vocab(cfg._cfg_dict, vocab_files[vocab_size])
    model = MODELS.build(cfg.model)
    assert model.heads, path
    if vocab_size is not None:
        assert model.backbone.vocab_size == vocab_size


@pytest.mark.parametrize('name', sorted(ABLATION_FIELDS))
def test_ablation_changes_one_field(name, monkeypatch):
    parent = _flatten(_load(PRETRAIN, monkeypatch).to_dict())
    child = _flatten(_load(osp.join(ABLATIONS, name), monkeypatch).to_dict())
    changed = {
        key
        for key in set(parent) | set(child)
        if parent.get(key, '<absent>') != child.get(key, '<absent>')
    }
    fields = ABLATION_FIELDS[name]
    outside = [
        key for key in changed
        if not any(key == f or key.startswith(f + '.') for f in fields)
    ]
    assert not outside, f'{name} also changes {sorted(outside)}'
    for field in fields:
        assert any(key == field or key.startswith(field + '.')
                   for key in changed), f'{name} does not change {field}'


def test_ablation_values():
    """The ablations set the values of paper table 3."""
    get = {
        name: Config.fromfile(osp.join(ABLATIONS, name)).model
        for name in ABLATION_FIELDS
    }
    for ratio in (0.1, 0.3, 0.7, 0.9):
        model = get[f'pretrain_fashiongen_mask-ratio-{ratio}.py']
        assert model.data_preprocessor.mask_generator.mask_ratio == ratio
    for alpha in (1, 2, 8, 16):
        model = get[f'pretrain_fashiongen_mask-unit-{alpha}.py']
        assert model.data_preprocessor.mask_generator.unit_scale == alpha
    for kind, type_name in (('grid', 'GridMask'), ('stroke', 'StrokeMask'),
                            ('center', 'CenterMask')):
        generator = get[f'pretrain_fashiongen_mask-{kind}.py'] \
            .data_preprocessor.mask_generator
        assert generator.type == type_name and generator.mask_ratio == 0.5
    heads = {
        'itm': {'itm'},
        'itm-mir': {'itm', 'mir'},
        'itm-mlm': {'itm', 'mlm'}
    }
    for suffix, expected in heads.items():
        built = get[f'pretrain_fashiongen_{suffix}.py'].heads
        assert {k for k, v in built.items() if v is not None} == expected
    assert get['pretrain_fashiongen_no-imagenet.py'].backbone.init_cfg is None


def test_pretrain_recipe_values():
    """docs/method.md section 5 in the merged pre-training config."""
    cfg = Config.fromfile(PRETRAIN)
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == \
        ('AdamW', 2.5e-3, 1e-4)
    assert [s.type
            for s in cfg.param_scheduler] == ['LinearLR', 'CosineAnnealingLR']
    assert cfg.train_dataloader.batch_size == 150
    assert cfg.auto_scale_lr == dict(base_batch_size=1200, enable=True)
    model = cfg.model
    # Stated once, in the data preprocessor; the backbone takes them.
    preprocessor = model.data_preprocessor
    assert (preprocessor.img_size, preprocessor.text_len) == (256, 128)
    assert (model.backbone.img_size, model.backbone.text_len) == (None, None)
    generator = model.data_preprocessor.mask_generator
    assert (generator.type, generator.mask_ratio, generator.patch_size,
            generator.unit_scale) == ('RandomGridMask', 0.5, 4, 4)
    assert model.data_preprocessor.mlm_mask_ratio == 0.15
    assert (model.heads.mir.loss_weight, model.heads.itm.loss_weight,
            model.heads.mlm.loss_weight) == (10.0, 1.0, 1.0)
    assert model.backbone.init_cfg.type == 'PVTPretrained'
    # The pipelines only read and pack: no second tokenizer or image size.
    for step in cfg.train_dataloader.dataset.pipeline:
        assert step.type in ('LoadFashionGenImage', 'PackMVLTInputs')


def test_model_index_lists_existing_configs():
    """model-index.yml -> metafiles -> configs, as ``mim`` reads them."""
    import yaml
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    names, listed = [], set()
    for metafile in index['Import']:
        with open(osp.join(REPO, metafile)) as f:
            meta = yaml.safe_load(f)
        collections = {c['Name'] for c in meta['Collections']}
        for model in meta['Models']:
            names.append(model['Name'])
            listed.add(model['Config'])
            assert model['In Collection'] in collections
            assert osp.isfile(osp.join(REPO, model['Config'])), model
            for result in model.get('Results', []):
                assert result['Dataset'] and result['Metrics']
    assert len(names) == len(set(names))
    for name in ABLATION_FIELDS:
        assert f'configs/mvlt/ablations/{name}' in listed


def _synthetic_recipe_options(tmp_path, train_products: int,
                              max_epochs: int) -> dict:
    """Options that train the paper recipe on a synthetic Fashion-Gen of
    ``train_products`` one-view products (its own vocabulary, batch 2, no
    loader workers), work dir ``tmp_path / 'work'``."""
    data = write_synthetic_fashiongen(
        str(tmp_path / 'synthetic'),
        train_products=train_products,
        val_products=1,
        views=(1, 1))
    return {
        'train_dataloader.dataset.data_root': osp.dirname(data['vocab']) + '/',
        'model.data_preprocessor.tokenizer.vocab_file': data['vocab'],
        'model.backbone.vocab_size': None,
        'model.heads.mlm.vocab_size': None,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': max_epochs,
        'work_dir': str(tmp_path / 'work'),
    }


@pytest.mark.slow
def test_pretrain_recipe_trains_on_synthetic_fashiongen(tmp_path, monkeypatch):
    """The paper recipe itself (256 px, L = 128, PVT-Tiny, ImageNet init from
    a PVT v1 checkpoint, auto-scaled lr) trains a few iterations on CPU."""
    monkeypatch.syspath_prepend(osp.join(REPO, 'tests', 'test_models'))
    from test_pvt_weights import pvt_v1_state_dict
    register_all_modules()
    checkpoint = str(tmp_path / 'pvt_tiny.pth')
    torch.save(pvt_v1_state_dict(), checkpoint)
    cfg = Config.fromfile(PRETRAIN)
    cfg.merge_from_dict(
        dict(
            _synthetic_recipe_options(tmp_path, 2, max_epochs=1),
            **{'model.backbone.init_cfg.checkpoint': checkpoint}))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    # The ImageNet weights were loaded (then trained a little).
    backbone = runner.model.backbone
    assert backbone.stages[0].pos_embed.shape == (1, 64 * 64, 64)
    # auto_scale_lr: 2 images instead of 1,200 scale 2.5e-3 down.
    lr = runner.optim_wrapper.optimizer.param_groups[0]['initial_lr']
    assert lr == pytest.approx(2.5e-3 * 2 / 1200)


@pytest.mark.slow
def test_pretrain_recipe_with_dist_train_sh_two_processes(tmp_path):
    """`tools/dist_train.sh configs/mvlt/pretrain_fashiongen.py 2` with the
    synthetic set and a tiny batch trains on CPU (gloo), as
    configs/mvlt/README.md shows."""
    options = dict(
        _synthetic_recipe_options(tmp_path, 4, max_epochs=2),
        **{'model.backbone.init_cfg': None})
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PYTHONPATH=REPO,
        HF_HUB_OFFLINE='1',
        OMP_NUM_THREADS='1',
        CUDA_VISIBLE_DEVICES='',
        PORT=str(29600 + os.getpid() % 1000))
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', PRETRAIN, '2'] +
        cfg_options_args(options),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    # 4 samples, 2 ranks x 2: one iteration an epoch, two epochs.
    assert 'Epoch(train) [2][1/1]' in log
    assert osp.isfile(tmp_path / 'work' / 'epoch_2.pth')


def test_paper_configs_keep_random_negatives():
    """The paper's recipe and its ablations pair images with random wrong
    captions; only the ITC-hard ablation mines them."""
    for path in [PRETRAIN] + [osp.join(ABLATIONS, n) for n in ABLATION_FIELDS]:
        model = Config.fromfile(path).model
        expected = 'ITCHardNegatives' if path.endswith('itc-hard.py') \
            else 'RandomNegatives'
        assert model.itm_sampler.type == expected, path
        assert ('itc' in model.heads) == path.endswith('itc-hard.py'), path
