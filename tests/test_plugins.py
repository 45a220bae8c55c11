"""A mask strategy added from outside the package, selected by type=."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from conftest import (REPO, cfg_options_args, nano_cfg_options, train_batch,
                      write_plugin_config)
from mvlt.registry import MASK_GENERATORS, MODELS
from mvlt.utils import register_all_modules

PLUGIN = '''
"""Mask the left half of every image: a plug-in outside mvlt/."""
import torch

from mvlt.models.mask_generators import BaseMaskGenerator
from mvlt.registry import MASK_GENERATORS


@MASK_GENERATORS.register_module()
class LeftHalfMask(BaseMaskGenerator):
    """Masks the left half of the unit grid."""

    def generate_units(self, batch_size, grid_height, grid_width, device,
                       generator):
        units = torch.zeros(batch_size, grid_height, grid_width,
                            dtype=torch.bool, device=device)
        units[:, :, :grid_width // 2] = True
        return units
'''


def _write_plugin(tmp_path):
    return write_plugin_config(
        tmp_path / 'my_experiment.py', 'left_half_mask', PLUGIN,
        "dict(data_preprocessor=dict(\n"
        "    mask_generator=dict(_delete_=True, type='LeftHalfMask')))")


def test_plugin_mask_from_a_config_outside_the_repo(tmp_path, nano_data,
                                                    monkeypatch):
    register_all_modules()
    config = _write_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = Config.fromfile(str(config))  # runs custom_imports
    cfg.merge_from_dict(nano_cfg_options(nano_data))
    assert 'LeftHalfMask' in MASK_GENERATORS
    model = MODELS.build(cfg.model)
    assert type(model.data_preprocessor.mask_generator).__name__ == \
        'LeftHalfMask'
    batch = train_batch(cfg, 4)
    mask = model.data_preprocessor(
        batch, training=True)['inputs']['image_mask']
    assert mask[:, :, :32].all() and not mask[:, :, 32:].any()
    assert torch.isfinite(
        sum(v for k, v in model(
            **model.data_preprocessor(batch, True), mode='loss').items()
            if k.startswith('loss')))


@pytest.mark.slow
def test_plugin_trains_with_tools_train(tmp_path, nano_data):
    config = _write_plugin(tmp_path)
    options = cfg_options_args(
        nano_cfg_options(nano_data, str(tmp_path / 'work')))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]),
        HF_HUB_OFFLINE='1')
    result = subprocess.run(
        [sys.executable, 'tools/train.py',
         str(config)] + options + ['train_cfg.max_epochs=1'],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
    assert "type='LeftHalfMask'" in (tmp_path / 'work' /
                                     'my_experiment.py').read_text()
