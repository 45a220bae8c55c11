"""Registries of mvlt.

Every registry is a child of the MMEngine root registry of the same role,
under the scope ``mvlt``; ``locations`` name the packages to import so that
``build`` from a config finds a ``type=`` without the caller importing
anything by hand. Their build functions are MMEngine's, wrapped so that a
misspelt ``type`` or keyword gets a "did you mean" hint.

``MASK_GENERATORS`` (image-mask strategies for masked image reconstruction:
random-grid, grid, stroke, center and plug-ins) and ``NEGATIVE_SAMPLERS``
(how image-text matching (ITM) picks the wrong captions of its negative
pairs: random, same-group, itc-hard and plug-ins) are names of
``TASK_UTILS``, where OpenMMLab keeps such parts.
"""
import difflib
import functools
import inspect
from typing import Any, Callable, Iterable

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS', 'METRICS',
    'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS', 'MASK_GENERATORS',
    'NEGATIVE_SAMPLERS'
]


def _registered_names(registry: Registry) -> set:
    """Names a ``type=`` can take in ``registry`` (its parents included)."""
    names = set()
    while registry is not None:
        names.update(registry.module_dict)
        registry = registry.parent
    return names


def _close(word: str, candidates: Iterable[str]) -> list:
    candidates = list(candidates)
    # Case-insensitive: 'PVTVl' is one edit from 'PVTVL' either way.
    lowered = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(
        word.lower(), lowered, n=3, cutoff=0.75)
    return [lowered[m] for m in matches]


def _init_keywords(cls: type) -> tuple:
    """The keyword arguments ``cls(...)`` takes: those of its ``__init__``
    and, while an ``__init__`` passes ``**kwargs`` on, of its bases'.

    Returns:
        tuple: (names, complete): ``complete`` is False when every
        ``__init__`` up the chain takes ``**kwargs`` (any keyword may be
        valid).
    """
    names: list = []
    for klass in cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        variadic = (inspect.Parameter.VAR_POSITIONAL,
                    inspect.Parameter.VAR_KEYWORD)
        names += [
            p.name for p in params
            if p.kind not in variadic and p.name not in names + ['self']
        ]
        if all(p.kind != inspect.Parameter.VAR_KEYWORD for p in params):
            return names, True
    return names, False


def near_miss_hint(err: Exception, cfg: Any, registry: Registry) -> str:
    """A "did you mean ...?" for a misspelt type or keyword, or ''.

    Worked out from the config and the registry (the registered names, the
    class's signature), not from MMEngine's wording of the error.

    Args:
        err (Exception): The KeyError / TypeError of a build.
        cfg (dict): The config that failed.
        registry (Registry): The registry it was built from.
    """
    if not isinstance(cfg, dict):
        return ''
    obj_type = cfg.get('type')
    obj_cls = registry.get(obj_type) if isinstance(obj_type, str) else obj_type
    if isinstance(err, KeyError) and isinstance(obj_type, str) and \
            obj_cls is None:
        matches = _close(obj_type, _registered_names(registry))
        return f" Did you mean {' / '.join(matches)}?" if matches else ''
    if isinstance(err, TypeError) and inspect.isclass(obj_cls):
        params, complete = _init_keywords(obj_cls)
        unknown = [
            key for key in cfg
            if key not in ('type', '_scope_') and key not in params
        ]
        if not complete or not unknown:
            # Not this part's keywords: a part it builds itself refused one
            # (its own build adds the hint).
            return ''
        matches = _close(unknown[0], params)
        return (f" Did you mean {' / '.join(matches)}?"
                if matches else f' Valid arguments: {", ".join(params)}.')
    return ''


def _with_suggestions(build_func: Callable) -> Callable:
    """Wrap an MMEngine build function to add :func:`near_miss_hint`."""

    @functools.wraps(build_func)
    def build(cfg: Any, registry: Registry, *args, **kwargs) -> Any:
        try:
            return build_func(cfg, registry, *args, **kwargs)
        except (KeyError, TypeError) as err:
            hint = near_miss_hint(err, cfg, registry)
            if not hint:
                raise
            if isinstance(err, KeyError):
                error = KeyError(
                    f"{cfg['type']} is not in the {registry.scope}::"
                    f'{registry.name} registry.{hint} Check the spelling of '
                    'type=, or import the module that registers it '
                    '(custom_imports in the config).')
            else:
                error = TypeError(str(err).rstrip('.') + '.' + hint)
        # Raised outside the except block: the hint is the whole story.
        raise error

    return build


def _child(name: str, parent: Registry, locations: list) -> Registry:
    """A registry of scope mvlt under ``parent``, with hinting builds."""
    return Registry(
        name,
        parent=parent,
        locations=locations,
        build_func=_with_suggestions(parent.build_func))


_ENGINE = ['mvlt.engine']
_MODELS = ['mvlt.models']
_DATASETS = ['mvlt.datasets']
_EVALUATION = ['mvlt.evaluation']
_VISUALIZATION = ['mvlt.visualization']

RUNNERS = _child('runner', MMENGINE_RUNNERS, _ENGINE)
RUNNER_CONSTRUCTORS = _child('runner constructor',
                             MMENGINE_RUNNER_CONSTRUCTORS, _ENGINE)
LOOPS = _child('loop', MMENGINE_LOOPS, _ENGINE)
HOOKS = _child('hook', MMENGINE_HOOKS, _ENGINE)
LOG_PROCESSORS = _child('log processor', MMENGINE_LOG_PROCESSORS, _ENGINE)
OPTIMIZERS = _child('optimizer', MMENGINE_OPTIMIZERS, _ENGINE)
OPTIM_WRAPPERS = _child('optimizer wrapper', MMENGINE_OPTIM_WRAPPERS, _ENGINE)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                    _ENGINE)
PARAM_SCHEDULERS = _child('parameter scheduler', MMENGINE_PARAM_SCHEDULERS,
                          _ENGINE)

DATASETS = _child('dataset', MMENGINE_DATASETS, _DATASETS)
DATA_SAMPLERS = _child('data sampler', MMENGINE_DATA_SAMPLERS, _DATASETS)
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, _DATASETS)

MODELS = _child('model', MMENGINE_MODELS, _MODELS)
MODEL_WRAPPERS = _child('model wrapper', MMENGINE_MODEL_WRAPPERS, _MODELS)
WEIGHT_INITIALIZERS = _child('weight initializer',
                             MMENGINE_WEIGHT_INITIALIZERS, _MODELS)
TASK_UTILS = _child('task util', MMENGINE_TASK_UTILS, _MODELS)

METRICS = _child('metric', MMENGINE_METRICS, _EVALUATION)
EVALUATORS = _child('evaluator', MMENGINE_EVALUATOR, _EVALUATION)

VISUALIZERS = _child('visualizer', MMENGINE_VISUALIZERS, _VISUALIZATION)
VISBACKENDS = _child('vis backend', MMENGINE_VISBACKENDS, _VISUALIZATION)

# Image-mask strategies and how ITM picks its negative pairs are task
# utilities, as mmdet / mmpretrain hang their samplers and assigners under
# TASK_UTILS; the two names stay for code and plug-ins that use them.
MASK_GENERATORS = TASK_UTILS
NEGATIVE_SAMPLERS = TASK_UTILS
