"""``--cfg-options`` words of an options dict (torch-free: the search
index writes its rebuild command with it, docs/deployment.md)."""
from typing import List, Optional


def cfg_options_argv(options: Optional[dict]) -> List[str]:
    """``['--cfg-options', 'KEY=VALUE', ...]`` for a tool's command line:
    the inverse of :func:`mvlt.utils.cli.add_cfg_options` (MMEngine's
    ``DictAction`` parses each value back). Empty without options.

    Args:
        options (dict | None): Dotted config keys -> values.
    """
    if not options:
        return []
    return ['--cfg-options'
            ] + [f'{key}={value}' for key, value in options.items()]
