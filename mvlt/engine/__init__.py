"""Training / testing machinery: hooks, loops and the log processor
(registries: HOOKS, LOOPS, LOG_PROCESSORS)."""
from .cached_config import CachedTextConfig
from .hooks import *  # noqa: F401,F403
from .log_processor import ResumeAwareLogProcessor  # noqa: F401
from .loops import *  # noqa: F401,F403
from .optim_wrappers import AutocastOptimWrapper, NonFiniteSkipOptimWrapper
from .runner import MVLTRunner, build_runner  # noqa: F401
