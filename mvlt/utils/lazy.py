"""Lazy package exports (PEP 562), torch-free."""
import importlib
from typing import Callable, Dict, List, Sequence, Tuple


def lazy_exports(
        package: str, modules: Dict[str, Sequence[str]],
        namespace: dict) -> Tuple[Callable, Callable, List[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` of a package whose public
    names are imported from its submodules on first use, so that importing
    the package (or one torch-free submodule of it) loads nothing else.

    Args:
        package: The package's ``__name__``.
        modules: Submodule (relative) -> the public names it defines.
        namespace: The package's ``globals()``.

    Raises:
        ValueError: when one name is listed under two submodules.
    """
    exports: Dict[str, str] = {}
    for module, names in modules.items():
        for name in names:
            if name in exports:
                raise ValueError(
                    f'{package}: {name!r} is listed under both '
                    f'{exports[name]!r} and {module!r}')
            exports[name] = module

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(
                f'module {package!r} has no attribute {name!r}')
        return getattr(
            importlib.import_module(f'.{exports[name]}', package), name)

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__, sorted(exports)
