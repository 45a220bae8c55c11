"""Distributed set-up that works without CUDA, and prompt failure reports."""
import datetime
import os
import sys
import time
import traceback
from typing import Any, Callable, Dict, Tuple

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


#: Store key under which a failing rank leaves its error for the others.
_FAILURE_KEY = 'mvlt/failure/rank{}'
#: Words of the errors a collective raises when a peer is gone or hung.
_COMMUNICATION_ERRORS = ('connection closed', 'connection reset', 'timed out',
                         'timeout', 'broken pipe', 'gloo', 'nccl',
                         'connection refused', 'socket')


def _default_store():
    """The rendezvous store of the default process group, or None."""
    try:
        from torch.distributed.distributed_c10d import _get_default_store
        return _get_default_store()
    except Exception:  # private API, or the group is already gone
        return None


def _summary(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f'{type(err).__name__}: {text[0][:500] if text else ""}'.rstrip(
        ': ')


def _is_communication_error(summary: str) -> bool:
    lowered = summary.lower()
    return any(word in lowered for word in _COMMUNICATION_ERRORS)


def _failure_reports(store, rank: int, world_size: int,
                     wait_s: float) -> Tuple[Dict[int, str], bool]:
    """Errors the other ranks left in ``store``; and whether it answered."""
    reports: Dict[int, str] = {}
    deadline = time.monotonic() + wait_s
    while True:
        try:
            for other in range(world_size):
                key = _FAILURE_KEY.format(other)
                if other == rank or other in reports:
                    continue
                if store.check([key]):
                    reports[other] = store.get(key).decode('utf-8', 'replace')
        except Exception:
            return reports, False
        if reports or time.monotonic() >= deadline:
            return reports, True
        time.sleep(0.2)


def run_reporting_failures(main: Callable[[], Any]) -> Any:
    """Run ``main``; in a distributed run end this rank at once on an error.

    Without a process group (or with one rank) errors propagate as usual.
    With several ranks, a rank whose ``main`` raises prints its traceback,
    leaves a one-line summary in the rendezvous store, prints which rank
    failed (its own error, or the one another rank left when this rank only
    saw a broken connection) and exits with status 1 at once: no atexit
    hooks, so no wait in a collective or in process-group teardown. The
    other ranks' next collective then fails within seconds (the peer's
    sockets are closed) instead of waiting for ``dist_cfg.timeout``, which
    still bounds the wait for a rank that hangs. When ``main`` returns,
    the ranks meet once more and the process group is destroyed.

    Args:
        main (Callable): The tool's work (build the runner, train / test).

    Returns:
        What ``main`` returns.
    """
    try:
        result = main()
    except BaseException as err:  # noqa: B902 - KeyboardInterrupt included
        if not (torch_dist.is_available() and torch_dist.is_initialized()) \
                or torch_dist.get_world_size() == 1:
            raise
        rank, world_size = torch_dist.get_rank(), torch_dist.get_world_size()
        summary = _summary(err)
        traceback.print_exc()
        store = _default_store()
        reports, reachable = {}, store is not None
        if store is not None:
            try:
                store.set(_FAILURE_KEY.format(rank), summary)
            except Exception:
                reachable = False
            if reachable:
                # A broken connection is usually the echo of a peer's
                # failure: give that peer a moment to leave its report.
                reports, reachable = _failure_reports(
                    store,
                    rank,
                    world_size,
                    wait_s=5.0 if _is_communication_error(summary) else 0.0)
        head = f'[rank {rank} of {world_size}]'
        if reports:
            causes = '; '.join(f'rank {other} failed with {text}'
                               for other, text in sorted(reports.items()))
            message = f'{head} stopping because {causes} (here: {summary}).'
        elif not reachable and _is_communication_error(summary):
            # Rank 0 hosts the store, which ends with its process (tearing
            # its group down first, to keep the store up for a moment, was
            # tried: the store went down with the group).
            message = (f'{head} stopping after a communication error '
                       f'({summary}); the rendezvous store on rank 0 is '
                       'unreachable, so rank 0 has probably failed.')
        else:
            message = (f'{head} this rank failed with {summary}; the other '
                       'ranks stop at their next collective.')
        print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    _shut_down_process_group()
    return result


def _shut_down_process_group() -> None:
    """Wait for every rank, then destroy the process group.

    A gloo group left alive until interpreter exit sometimes aborts a rank
    there ('terminate called without an active exception', seen in CI on a
    run whose training had finished), so the tools end it explicitly.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    if torch_dist.get_world_size() > 1:
        torch_dist.barrier()
    torch_dist.destroy_process_group()
