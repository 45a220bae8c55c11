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
