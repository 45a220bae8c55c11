"""Loops (registry: LOOPS)."""
from .retrieval_loop import RetrievalTestLoop
from .retrieval_scoring import RetrievalScorer
from .test_loop import MVLTTestLoop

__all__ = ['RetrievalTestLoop', 'RetrievalScorer', 'MVLTTestLoop']
