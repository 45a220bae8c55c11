"""Turning command-line options of the tools into config changes."""
import importlib.util
import os.path as osp
import sys
from typing import Optional

from mmengine.config import Config
from mmengine.utils import import_modules_from_strings


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config, apply ``--cfg-options`` and run its ``custom_imports``.

    Every tool reads its config here. A plug-in module that the config's
    ``custom_imports`` names is found without ``PYTHONPATH`` when it lies
    next to the config or in a folder above it (see
    :func:`import_custom_modules`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImportError: A module of ``custom_imports`` cannot be found (the
            message says how to make it importable) or fails to import.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Config file {path} does not exist; configs live under '
            'configs/ (for example configs/mvlt/pretrain_fashiongen.py).')
    # MMEngine would import the plug-ins with sys.path as it is and fail
    # with a bare 'Failed to import'; they are imported below instead.
    cfg = Config.fromfile(path, import_custom_modules=False)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    import_custom_modules(cfg, path)
    return cfg


def import_custom_modules(cfg: Config, config_path: str) -> None:
    """Import the modules of ``cfg.custom_imports`` (MMEngine's key).

    A module that is not importable as ``sys.path`` stands is looked for in
    the config's folder, then in each folder above it: the first folder
    that holds it (``a/b/c.py`` or the package ``a/b/c/`` for ``a.b.c``) is
    appended to ``sys.path``, as OpenMMLab tools run project configs from
    the project's root. So a plug-in next to its config, or a config under
    ``projects/<name>/configs/`` naming ``projects.<name>....``, needs no
    ``PYTHONPATH``. The modules are then imported by MMEngine's
    ``import_modules_from_strings`` (``allow_failed_imports=True`` turns
    failures into warnings, as in MMEngine).

    Raises:
        ImportError: A module is neither importable nor found near the
            config (the message names the config, the module and the fix),
            or importing it failed (chained to the module's own error).
    """
    custom = cfg.get('custom_imports')
    if not custom:
        return
    imports = custom.get('imports') or []
    imports = [imports] if isinstance(imports, str) else list(imports)
    allow_failed = custom.get('allow_failed_imports', False)
    start = osp.dirname(osp.abspath(config_path))
    for name in imports:
        if not isinstance(name, str) or _importable(name):
            continue
        folder = _folder_holding(name, start)
        if folder is not None:
            sys.path.append(folder)
            importlib.invalidate_caches()
        elif not allow_failed:
            top = name.split('.')[0]
            raise ImportError(
                f'{config_path}: custom_imports names the module {name!r}, '
                'which is not importable: it is neither on sys.path nor '
                f'({name.replace(".", "/")}.py or package) in {start} or a '
                f'folder above it. Put the folder that holds {top}.py or '
                f'{top}/ on PYTHONPATH (PYTHONPATH=/that/folder python '
                'tools/train.py ...) or keep the config in or below that '
                'folder; see "Extend it" in README.md.')
    try:
        import_modules_from_strings(imports, allow_failed)
    except ImportError as err:
        cause = err.__cause__ or err.__context__ or err
        raise ImportError(
            f'{config_path}: importing the custom_imports modules {imports} '
            f'failed: {type(cause).__name__}: {cause}') from cause


def _importable(name: str) -> bool:
    """Whether ``name`` can be imported as ``sys.path`` stands.

    Raises:
        Exception: A parent package exists but fails to import (its own
            error, with its traceback).
    """
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError as err:
        # A missing parent of ``name`` means "not found"; a module missing
        # inside an existing parent is that package's own error.
        if err.name and (name + '.').startswith(err.name + '.'):
            return False
        raise


def _folder_holding(name: str, start: str) -> Optional[str]:
    """The first of ``start`` and its ancestors that holds module ``name``.
    """
    parts = name.split('.')
    folder = start
    while True:
        base = osp.join(folder, *parts)
        if osp.isfile(base + '.py') or osp.isfile(
                osp.join(base, '__init__.py')):
            return folder
        parent = osp.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: Optional[str]) -> None:
    """``--work-dir`` > ``cfg.work_dir`` > ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def amp_precision(device_type: str) -> str:
    """The mixed precision ``--amp`` uses on ``device_type``.

    ``'bfloat16'`` on a CPU (torch's CPU autocast supports bf16 only) and on
    GPUs that have it (CUDA compute capability >= 8.0); ``'float16'`` with
    dynamic loss scaling on older GPUs.

    Raises:
        RuntimeError: The device cannot train in mixed precision here (for
            example Apple ``mps``, or a CPU build whose autocast lacks bf16),
            with what to do instead.
    """
    import torch
    if device_type == 'cuda':
        return 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    if device_type == 'cpu':
        try:
            with torch.autocast('cpu', dtype=torch.bfloat16):
                probe = torch.ones(2, 2) @ torch.ones(2, 2)
        except (RuntimeError, AssertionError) as err:
            raise RuntimeError(
                f'--amp: this CPU build of torch cannot autocast to bfloat16 '
                f'({err}); train without --amp.') from None
        if probe.dtype != torch.bfloat16:
            raise RuntimeError(
                '--amp: torch autocast on this CPU does not compute in '
                'bfloat16; train without --amp.')
        return 'bfloat16'
    if device_type in ('npu', 'mlu', 'musa'):
        return 'float16'
    raise RuntimeError(
        f'--amp: mixed-precision training is not supported on the '
        f'{device_type!r} device by this project; train without --amp.')


def enable_amp(cfg: Config, device_type: Optional[str] = None) -> str:
    """Switch ``cfg.optim_wrapper`` to mixed precision (``--amp``).

    bf16 (CPU, or a GPU that has it) trains through
    :class:`~mvlt.engine.optim_wrappers.AutocastOptimWrapper` (autocast, no
    loss scaling, non-finite updates skipped); fp16 (GPUs without bf16)
    through MMEngine's ``AmpOptimWrapper`` with dynamic loss scaling. The
    choice is made here, before the runner is built, so that a device that
    cannot do it is refused at once.

    Args:
        cfg (Config): The training config (changed in place).
        device_type (str, optional): Default: MMEngine's ``get_device()``.

    Returns:
        str: The precision chosen, ``'bfloat16'`` or ``'float16'``.

    Raises:
        RuntimeError: See :func:`amp_precision`.
        ValueError: The config already names another wrapper type that
            cannot be switched.
    """
    from mmengine.device import get_device
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        return str(wrapper.get('dtype') or 'float16')
    if kind not in ('OptimWrapper', 'NonFiniteSkipOptimWrapper'):
        raise ValueError(
            f'--amp: optim_wrapper.type is {kind!r}; --amp switches only '
            "'OptimWrapper' / 'NonFiniteSkipOptimWrapper'. Set its mixed "
            'precision in the config instead.')
    device_type = device_type or get_device()
    precision = amp_precision(device_type)
    if precision == 'bfloat16':
        wrapper.type = 'AutocastOptimWrapper'
        wrapper.device_type = device_type
    else:
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    wrapper.dtype = precision
    return precision


def prepare_test_config(cfg: Config,
                        config_path: str,
                        show_dir: Optional[str] = None) -> None:
    """Check a test config and add the result hooks of ``tools/test.py``.

    Adds ``TestResultsHook`` (metrics table + JSON in the work dir) and, with
    ``show_dir``, ``MVLTVisualizationHook`` writing figures there.

    Raises:
        ValueError: The config has no test_dataloader or no test_evaluator.
    """
    for key, example in (('test_dataloader', 'a dataloader dict'),
                         ('test_evaluator', "dict(type='RetrievalMetric'), "
                          "dict(type='RecognitionMetric') or "
                          "dict(type='ReconstructionMetric')")):
        if not cfg.get(key):
            raise ValueError(
                f'{config_path} has no {key}; a test config needs one '
                f'(e.g. {example}). Use one of the test configs under '
                'configs/mvlt/ or add it.')
    if not cfg.get('test_cfg'):
        cfg.test_cfg = dict(type='MVLTTestLoop')
    hooks = list(cfg.get('custom_hooks') or [])
    types = {hook.get('type') for hook in hooks}
    if 'TestResultsHook' not in types:
        hooks.append(dict(type='TestResultsHook'))
    if show_dir:
        cfg.show_dir = show_dir
        hooks = [h for h in hooks if h.get('type') != 'MVLTVisualizationHook']
        hooks.append(dict(type='MVLTVisualizationHook', out_dir=show_dir))
    cfg.custom_hooks = hooks
