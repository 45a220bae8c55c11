"""load_config (every tool's config reader) finds the plug-ins a config's
custom_imports names, next to the config or above it, or says how to."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

from conftest import (NANO_CONFIG, REPO, cfg_options_args, nano_cfg_options,
                      run_python)
from mvlt.registry import MASK_GENERATORS
from mvlt.utils import register_all_modules
from mvlt.utils.config import load_config

PLUGIN = '''
"""Mask the top rows of every image: a plug-in outside mvlt/."""
import torch

from mvlt.models.mask_generators import BaseMaskGenerator
from mvlt.registry import MASK_GENERATORS


@MASK_GENERATORS.register_module()
class {name}(BaseMaskGenerator):
    """Masks the top half of the unit grid."""

    def generate_units(self, batch_size, grid_height, grid_width, device,
                       generator):
        units = torch.zeros(batch_size, grid_height, grid_width,
                            dtype=torch.bool, device=device)
        units[:, :grid_height // 2] = True
        return units
'''


def _experiment(folder, module: str, mask_type: str, plugin_dir=None):
    """A plug-in module (in ``plugin_dir``, default ``folder``) and a config
    in ``folder`` that imports it through custom_imports."""
    os.makedirs(folder, exist_ok=True)
    plugin_dir = plugin_dir or folder
    path = osp.join(plugin_dir, *module.split('.')) + '.py'
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(PLUGIN.format(name=mask_type))
    config = osp.join(folder, 'my_experiment.py')
    with open(config, 'w') as f:
        f.write(
            textwrap.dedent(f'''
            _base_ = [{NANO_CONFIG!r}]
            custom_imports = dict(imports=[{module!r}],
                                  allow_failed_imports=False)
            model = dict(data_preprocessor=dict(
                mask_generator=dict(_delete_=True, type={mask_type!r})))
            '''))
    return config


@pytest.fixture
def clean_path(monkeypatch, tmp_path):
    """sys.path restored after the test; the working directory elsewhere."""
    monkeypatch.setattr(sys, 'path', list(sys.path))
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    register_all_modules()


def test_plugin_next_to_its_config_is_found(tmp_path, clean_path):
    config = _experiment(
        str(tmp_path / 'exp'), 'top_rows_mask_a', 'TopRowsMaskA')
    cfg = load_config(config)
    assert 'TopRowsMaskA' in MASK_GENERATORS
    generator = MASK_GENERATORS.build(
        cfg.model.data_preprocessor.mask_generator)
    assert type(generator).__name__ == 'TopRowsMaskA'
    assert str(tmp_path / 'exp') in sys.path


def test_plugin_package_above_the_config_is_found(tmp_path, clean_path):
    # As projects/<name>/configs/ naming projects.<name>.<module>.
    root = str(tmp_path / 'root')
    config = _experiment(
        osp.join(root, 'my_projects', 'rows', 'configs'),
        'my_projects.rows.top_rows_mask_b',
        'TopRowsMaskB',
        plugin_dir=root)
    load_config(config)
    assert 'TopRowsMaskB' in MASK_GENERATORS
    assert root in sys.path


def test_missing_plugin_names_config_module_and_fix(tmp_path, clean_path):
    config = _experiment(
        str(tmp_path / 'exp'), 'no_such_mask_module', 'NoSuchMask')
    os.remove(str(tmp_path / 'exp' / 'no_such_mask_module.py'))
    with pytest.raises(ImportError) as info:
        load_config(config)
    message = str(info.value)
    assert message.startswith(f'{config}: custom_imports names the module '
                              "'no_such_mask_module', which is not "
                              'importable')
    assert 'PYTHONPATH=' in message and '"Extend it" in README.md' in message


def test_plugin_failing_inside_names_its_own_error(tmp_path, clean_path):
    config = _experiment(
        str(tmp_path / 'exp'), 'broken_mask_module', 'BrokenMask')
    with open(str(tmp_path / 'exp' / 'broken_mask_module.py'), 'w') as f:
        f.write('import a_dependency_that_is_not_installed\n')
    with pytest.raises(ImportError) as info:
        load_config(config)
    assert str(info.value).startswith(f'{config}: importing the '
                                      'custom_imports modules')
    assert "No module named 'a_dependency_that_is_not_installed'" in str(
        info.value)


@pytest.mark.slow
def test_project_config_loads_without_pythonpath(tmp_path):
    """The block_mask project config from another folder, with nothing but
    the installed package on sys.path (a fresh process)."""
    project_config = osp.join(REPO, 'projects', 'block_mask', 'configs',
                              'pretrain_fashiongen_blockwise-mask.py')
    script = textwrap.dedent(f'''
        from mvlt.utils import register_all_modules
        from mvlt.utils.config import load_config
        from mvlt.registry import MASK_GENERATORS
        register_all_modules()
        cfg = load_config({project_config!r})
        generator = MASK_GENERATORS.build(
            cfg.model.data_preprocessor.mask_generator)
        print(type(generator).__name__)
        ''')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    out = run_python(script, cwd=str(tmp_path), env=env)
    assert out.split()[-1] == 'BlockwiseMask'


@pytest.mark.slow
def test_tools_train_finds_the_plugin_without_pythonpath(tmp_path, nano_data):
    config = _experiment(
        str(tmp_path / 'exp'), 'top_rows_mask_c', 'TopRowsMaskC')
    options = dict(
        nano_cfg_options(nano_data, str(tmp_path / 'work')),
        **{'train_cfg.max_epochs': '1'})
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    result = subprocess.run(
        [sys.executable,
         osp.join(REPO, 'tools', 'train.py'), config] +
        cfg_options_args(options),
        cwd=str(tmp_path),
        env=dict(env, HF_HUB_OFFLINE='1'),
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
