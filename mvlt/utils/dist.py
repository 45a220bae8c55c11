"""Distributed set-up that also works on machines without CUDA."""
import datetime
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def setup_distributed(cfg: Config, launcher: str) -> None:
    """Prepare ``cfg`` (and, on CPU, the process group) for ``launcher``.

    MMEngine 0.10.7's PyTorch launcher calls ``torch.cuda.set_device`` even
    for gloo, and its Runner builds DDP with ``device_ids=[LOCAL_RANK]``; both
    fail without CUDA. On a CPU-only machine this initialises the gloo
    process group itself (the Runner then skips its own ``init_dist``) and
    asks for DDP with ``device_ids=None``. With CUDA nothing changes.

    Args:
        cfg (Config): The run config; ``env_cfg.dist_cfg.timeout`` (seconds)
            is honoured.
        launcher (str): 'none', 'pytorch', 'slurm' or 'mpi'.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {}) or {}
    cfg.env_cfg = dict(cfg.get('env_cfg', {}))
    cfg.env_cfg['dist_cfg'] = dict(dist_cfg, backend='gloo')
    if not torch_dist.is_initialized():
        if launcher == 'slurm':
            _export_slurm_env()
        timeout = datetime.timedelta(seconds=dist_cfg.get('timeout', 1800))
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            timeout=timeout)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def _export_slurm_env() -> None:
    """Translate SLURM variables into the torch.distributed ones."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        import subprocess
        nodes = os.environ['SLURM_NODELIST']
        first = subprocess.getoutput(
            f'scontrol show hostname {nodes} | head -n1')
        os.environ['MASTER_ADDR'] = first
