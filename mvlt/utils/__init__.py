"""Utilities: module registration, environment set-up, tokenizer."""
from .allocator import tune_cpu_allocator
from .checkpoint import load_checkpoint_file, register_safe_checkpoint_loader
from .dist import run_reporting_failures, setup_distributed
from .heads_check import check_checkpoint_heads, checkpoint_state_dict
from .setup_env import register_all_modules
from .tokenizer import build_tokenizer, build_vocab

__all__ = [
    'check_checkpoint_heads', 'checkpoint_state_dict', 'load_checkpoint_file',
    'register_all_modules', 'register_safe_checkpoint_loader',
    'run_reporting_failures', 'setup_distributed', 'tune_cpu_allocator',
    'build_tokenizer', 'build_vocab'
]
