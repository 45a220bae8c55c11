"""Utilities: module registration, environment set-up, tokenizer."""
from .checkpoint import load_checkpoint_file
from .dist import setup_distributed
from .setup_env import register_all_modules
from .tokenizer import build_tokenizer, build_vocab

__all__ = [
    'load_checkpoint_file', 'register_all_modules', 'setup_distributed',
    'build_tokenizer', 'build_vocab'
]
