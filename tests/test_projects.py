"""The block-wise masking project: a plug-in used through custom_imports,
also from a config outside the repository tree."""
import copy
import importlib
import os.path as osp
import textwrap

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import NANO_CONFIG, REPO, nano_cfg_options, train_batch
from mvlt.registry import MASK_GENERATORS, MODELS
from mvlt.utils import register_all_modules

PROJECT_CONFIG = osp.join(REPO, 'projects', 'block_mask', 'configs',
                          'pretrain_fashiongen_blockwise-mask.py')


@pytest.fixture
def plugin(monkeypatch):
    """The plug-in module, importable as custom_imports names it."""
    monkeypatch.syspath_prepend(REPO)
    register_all_modules()
    return importlib.import_module('projects.block_mask.block_mask')


def test_masks_are_blocks_at_the_target_ratio(plugin):
    generator = plugin.BlockwiseMask(mask_ratio=0.5, unit_scale=4)
    units = generator.generate_units(16, 16, 16, torch.device('cpu'),
                                     torch.Generator().manual_seed(0))
    counts = units.flatten(1).sum(1)
    # At most the target (128 of 256 units), close to it on average.
    assert counts.max() <= 128 and counts.float().mean() >= 0.85 * 128
    # A few rectangles, not scattered units: few connected regions.
    regions = [
        cv2.connectedComponents(u.numpy().astype(np.uint8))[0] - 1
        for u in units
    ]
    assert max(regions) <= 8
    # Pixels follow the 16 px unit grid; the same seed gives the same masks.
    pixels = generator(4, 256, 256, generator=torch.Generator().manual_seed(3))
    again = generator(4, 256, 256, generator=torch.Generator().manual_seed(3))
    assert torch.equal(pixels, again)
    assert torch.equal(
        pixels[:, ::16, ::16].repeat_interleave(16,
                                                1).repeat_interleave(16, 2),
        pixels)


def test_arguments_are_checked(plugin):
    with pytest.raises(ValueError, match='min_block_units'):
        plugin.BlockwiseMask(min_block_units=8, max_block_units=4)
    with pytest.raises(ValueError, match='min_aspect'):
        plugin.BlockwiseMask(min_aspect=2.0)


def test_project_config_selects_the_plugin(monkeypatch):
    monkeypatch.syspath_prepend(REPO)
    cfg = Config.fromfile(PROJECT_CONFIG)  # runs custom_imports
    assert cfg.custom_imports.imports == ['projects.block_mask.block_mask']
    generator = MASK_GENERATORS.build(
        cfg.model.data_preprocessor.mask_generator)
    assert type(generator).__name__ == 'BlockwiseMask'
    # Everything else is the paper recipe.
    parent = Config.fromfile(
        osp.join(REPO, 'configs', 'mvlt', 'pretrain_fashiongen.py'))
    assert cfg.model.backbone == parent.model.backbone
    assert cfg.optim_wrapper == parent.optim_wrapper


def test_config_outside_the_repository_builds_the_plugin(
        tmp_path, nano_data, monkeypatch):
    """A config outside the repository reaches the plug-in through the
    Runner and its loss is finite (the plug-in path is trained once, by
    tests/test_plugins.py::test_plugin_trains_with_tools_train)."""
    register_all_modules()
    outside = tmp_path / 'my_experiments' / 'nano_blockwise.py'
    outside.parent.mkdir()
    outside.write_text(
        textwrap.dedent(f'''
        _base_ = [{NANO_CONFIG!r}]
        custom_imports = dict(
            imports=['projects.block_mask.block_mask'],
            allow_failed_imports=False)
        model = dict(data_preprocessor=dict(mask_generator=dict(
            _delete_=True, type='BlockwiseMask', mask_ratio=0.5,
            patch_size=4, unit_scale=2, min_block_units=2)))
        '''))
    assert not str(outside).startswith(REPO)
    # As tools/dist_train.sh does: the repository root on the path.
    monkeypatch.syspath_prepend(REPO)
    cfg = Config.fromfile(str(outside))
    cfg.merge_from_dict(nano_cfg_options(nano_data, str(tmp_path / 'work')))
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    generator = runner.model.data_preprocessor.mask_generator
    assert type(generator).__name__ == 'BlockwiseMask'
    losses = runner.model(
        **runner.model.data_preprocessor(train_batch(cfg, 4), True),
        mode='loss')
    assert all(
        torch.isfinite(v).all() for k, v in losses.items()
        if k.startswith('loss'))
    # The masks the model trained with are the plug-in's blocks.
    model = MODELS.build(cfg.model)
    batch = dict(
        inputs=dict(
            images=torch.zeros(4, 3, 64, 64, dtype=torch.uint8),
            input_ids=torch.full((4, 8), 5),
            attention_mask=torch.ones(4, 8, dtype=torch.long)))
    mask = model.data_preprocessor(
        batch, training=True)['inputs']['image_mask']
    units = mask[:, ::8, ::8]
    assert 0 < units.sum() <= 4 * 32
