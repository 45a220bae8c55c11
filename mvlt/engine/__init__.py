"""Training / testing machinery: hooks and loops (registries: HOOKS, LOOPS)."""
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .optim_wrappers import NonFiniteSkipOptimWrapper  # noqa: F401
from .runner import MVLTRunner, build_runner  # noqa: F401
