"""Turning command-line options of the tools into config changes."""
import os.path as osp
from typing import Optional

from mmengine.config import Config


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply ``--cfg-options``, with clear file errors."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Config file {path} does not exist; configs live under '
            'configs/ (for example configs/mvlt/pretrain_fashiongen.py).')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: Optional[str]) -> None:
    """``--work-dir`` > ``cfg.work_dir`` > ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def enable_amp(cfg: Config) -> None:
    """Switch the optimiser wrapper to MMEngine's ``AmpOptimWrapper``.

    bf16 where the GPU supports it, else fp16 with dynamic loss scaling.
    """
    import torch
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        return
    wrapper.type = 'AmpOptimWrapper'
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        wrapper.dtype = 'bfloat16'
    elif torch.cuda.is_available():
        wrapper.dtype = 'float16'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.dtype = 'bfloat16'


def prepare_test_config(cfg: Config,
                        config_path: str,
                        show_dir: Optional[str] = None) -> None:
    """Check a test config and add the result hooks of ``tools/test.py``.

    Adds ``TestResultsHook`` (metrics table + JSON in the work dir) and, with
    ``show_dir``, ``MVLTVisualizationHook`` writing figures there.

    Raises:
        ValueError: The config has no test_dataloader or no test_evaluator.
    """
    for key, example in (('test_dataloader', 'a dataloader dict'),
                         ('test_evaluator', "dict(type='RetrievalMetric'), "
                          "dict(type='RecognitionMetric') or "
                          "dict(type='ReconstructionMetric')")):
        if not cfg.get(key):
            raise ValueError(
                f'{config_path} has no {key}; a test config needs one '
                f'(e.g. {example}). Use one of the test configs under '
                'configs/mvlt/ or add it.')
    if not cfg.get('test_cfg'):
        cfg.test_cfg = dict(type='MVLTTestLoop')
    hooks = list(cfg.get('custom_hooks') or [])
    types = {hook.get('type') for hook in hooks}
    if 'TestResultsHook' not in types:
        hooks.append(dict(type='TestResultsHook'))
    if show_dir:
        cfg.show_dir = show_dir
        hooks = [h for h in hooks if h.get('type') != 'MVLTVisualizationHook']
        hooks.append(dict(type='MVLTVisualizationHook', out_dir=show_dir))
    cfg.custom_hooks = hooks
