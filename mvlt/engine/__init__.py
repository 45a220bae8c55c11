"""Training / testing machinery: hooks and loops (registries: HOOKS, LOOPS)."""
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
