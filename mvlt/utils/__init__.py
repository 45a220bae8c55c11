"""Utilities: module registration, environment set-up, checkpoints.

The names below are imported on first use (PEP 562), so that the torch-free
modules of this package (``mvlt.utils.ranking``, ``mvlt.utils.hdf5``)
can be imported where torch is not installed (the ONNX Runtime serving
path, docs/deployment.md).
"""
from .lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        'allocator': ('tune_cpu_allocator',),
        'checkpoint': (
            'load_checkpoint_file', 'register_safe_checkpoint_loader'),
        'dist': ('run_reporting_failures', 'setup_distributed'),
        'heads_check': ('check_checkpoint_heads', 'checkpoint_state_dict'),
        'setup_env': ('register_all_modules',),
    }, globals())
