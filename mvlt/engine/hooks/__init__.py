"""Hooks (registry: HOOKS)."""
from .bad_sample_hook import BadSampleCounterHook  # noqa: F401
from .checkpoint_hook import AtomicCheckpointHook  # noqa: F401
from .heads_check_hook import CheckpointHeadsHook  # noqa: F401
from .label_map_check_hook import LabelMapCheckHook  # noqa: F401
from .nonfinite_guard_hook import NonFiniteGuardHook  # noqa: F401
from .results_hook import TestResultsHook  # noqa: F401
from .resume_state_hook import ResumeStateHook  # noqa: F401
from .shape_check_hook import CheckpointShapeCheckHook  # noqa: F401
from .visualization_hook import MVLTVisualizationHook  # noqa: F401
