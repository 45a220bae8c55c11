"""Registration of all modules, the checkpoint loader and the default scope.
"""
import datetime
import warnings

from mmengine.registry import DefaultScope

from .checkpoint import register_safe_checkpoint_loader


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mvlt module that registers something and make mvlt's
    weights-only loader MMEngine's loader of local checkpoint files
    (:func:`mvlt.utils.checkpoint.register_safe_checkpoint_loader`).

    Importing mvlt changes no state of MMEngine; this call is the opt-in that
    every tool (and ``MVLTInferencer``) makes.

    Args:
        init_default_scope (bool): Also make ``mvlt`` the current default
            scope, so that ``type=`` names resolve in mvlt's registries first.
    """
    import mvlt.datasets  # noqa: F401
    import mvlt.engine  # noqa: F401
    import mvlt.evaluation  # noqa: F401
    import mvlt.models  # noqa: F401
    import mvlt.visualization  # noqa: F401

    register_safe_checkpoint_loader()
    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != 'mvlt':
        if current is not None:
            warnings.warn(f'The current default scope {current.scope_name!r} '
                          'is not mvlt; switching to a new mvlt scope.')
        DefaultScope.get_instance(
            f'mvlt-{datetime.datetime.now()}', scope_name='mvlt')
