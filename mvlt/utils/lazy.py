"""Lazy package exports (PEP 562), torch-free."""
import importlib
from typing import Callable, Dict, Tuple


def lazy_exports(package: str, exports: Dict[str, str],
                 namespace: dict) -> Tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` of a package whose public names are
    imported from its submodules on first use, so that importing the package
    (or one torch-free submodule of it) loads nothing else.

    Args:
        package: The package's ``__name__``.
        exports: Public name -> submodule (relative) that defines it.
        namespace: The package's ``globals()``.
    """

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(
                f'module {package!r} has no attribute {name!r}')
        return getattr(
            importlib.import_module(f'.{exports[name]}', package), name)

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
