"""Tuning of glibc's heap allocator for CPU training and evaluation.

A process-wide setting, so nothing applies it on import: ``MVLTRunner``
applies it when its config sets ``env_cfg.cpu_malloc_tuning=True`` and no
CUDA device is present (``configs/_base_/default_runtime.py``), and the
speed benchmark (``tools/analysis_tools/benchmark.py``) unless
``--no-malloc-tuning``. Measurements: ``docs/benchmark.md``.
"""
import ctypes

# glibc mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def tune_cpu_allocator() -> bool:
    """Keep freed heap memory in the process instead of returning it.

    By default glibc serves every block above its mmap threshold (at most 32
    MiB) with a fresh ``mmap`` and unmaps it on free, so the kernel
    zero-fills every page again at the next step: a training step of the
    tiny preset at 256 px, batch 8, re-faults about 1.3 GB that way (measured
    0.5-0.8 s of system time per 2.4 s step on 2 cores). With ``mmap`` off
    and no trimming, freed memory is reused (the resident set then stays at
    its peak). The change holds for the rest of the process.

    Returns:
        bool: True when the settings were applied (glibc), else False.
    """
    try:
        libc = ctypes.CDLL('libc.so.6')
    except OSError:
        return False
    applied = libc.mallopt(_M_MMAP_MAX, 0) == 1
    # The largest value mallopt takes: an int.
    applied &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    return bool(applied)
