"""Utilities: module registration, environment set-up, tokenizer."""
from .checkpoint import load_checkpoint_file
from .dist import run_reporting_failures, setup_distributed
from .heads_check import check_checkpoint_heads, checkpoint_state_dict
from .setup_env import register_all_modules
from .tokenizer import build_tokenizer, build_vocab

__all__ = [
    'check_checkpoint_heads', 'checkpoint_state_dict', 'load_checkpoint_file',
    'register_all_modules', 'run_reporting_failures', 'setup_distributed',
    'build_tokenizer', 'build_vocab'
]
