"""Utilities: module registration, environment set-up, tokenizer.

The names below are imported on first use (PEP 562), so that the torch-free
modules of this package (``mvlt.utils.tokenizer``, ``mvlt.utils.ranking``)
can be imported where torch is not installed (the ONNX Runtime serving
path, docs/deployment.md).
"""
from .lazy import lazy_exports

#: Public name -> the module of this package that defines it.
_EXPORTS = dict(
    tune_cpu_allocator='allocator',
    load_checkpoint_file='checkpoint',
    register_safe_checkpoint_loader='checkpoint',
    run_reporting_failures='dist',
    setup_distributed='dist',
    check_checkpoint_heads='heads_check',
    checkpoint_state_dict='heads_check',
    register_all_modules='setup_env',
    build_tokenizer='tokenizer',
    build_vocab='tokenizer')

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
