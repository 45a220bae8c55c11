"""Loops (registry: LOOPS)."""
from .retrieval_loop import RetrievalTestLoop
from .retrieval_scoring import RetrievalScorer
from .test_loop import MVLTTestLoop
from .tgir_loop import TGIRTestLoop

__all__ = [
    'RetrievalTestLoop', 'RetrievalScorer', 'MVLTTestLoop', 'TGIRTestLoop'
]
