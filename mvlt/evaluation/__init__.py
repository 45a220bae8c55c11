"""Evaluation metrics (registry: METRICS)."""
from .metrics import *  # noqa: F401,F403
