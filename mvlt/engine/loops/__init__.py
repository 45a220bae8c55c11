"""Loops (registry: LOOPS)."""
from .iter_based_loop import IterBasedTrainLoop, chain_epochs
from .retrieval_loop import RetrievalTestLoop
from .retrieval_scoring import RetrievalScorer
from .test_loop import MVLTTestLoop
from .tgir_loop import TGIRTestLoop

__all__ = [
    'IterBasedTrainLoop', 'chain_epochs', 'RetrievalTestLoop',
    'RetrievalScorer', 'MVLTTestLoop', 'TGIRTestLoop'
]
