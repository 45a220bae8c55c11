"""Opt-in ``torch.compile`` of MVLT (``model.compile``): by region or whole.
"""
from contextlib import nullcontext
from typing import Optional, Union

import torch
import torch.nn as nn

#: What ``model.compile`` may compile: every PVT-VL block on its own
#: (regional compilation), the MIR decoder, or the whole forward.
REGIONS = ('blocks', 'decoder', 'model')
#: Caption lengths a compiled model is cut to are multiples of this: at
#: L = 128 a compiled region meets 4 caption shapes instead of 16.
DEFAULT_CAPTION_BUCKET = 32


def parse_compile(compile: Union[bool, dict]) -> Optional[dict]:
    """Check ``model.compile`` and fill in its defaults.

    Args:
        compile (bool | dict): False: eager. True or a dict: ``regions``
            (a name of :data:`REGIONS` or a tuple of them; default
            ``('blocks',)``), ``caption_bucket`` (int, default 32), and
            ``torch.compile``'s own options (``backend``, ``mode``,
            ``dynamic``, ``fullgraph``, ``options``); ``dynamic`` defaults
            to False (static shapes: the caption buckets bound them).

    Returns:
        dict | None: ``regions``, ``caption_bucket`` and ``torch`` (the
        ``torch.compile`` keyword arguments), or None when off.

    Raises:
        TypeError: ``compile`` is neither a bool nor a dict.
        ValueError: An unknown region or a caption bucket below 1.
    """
    if not isinstance(compile, (bool, dict)):
        raise TypeError('MVLT: compile must be a bool or a dict of options '
                        f'(regions, caption_bucket, torch.compile options), '
                        f'got {compile!r}.')
    if not compile:
        return None
    options = dict(compile) if isinstance(compile, dict) else {}
    regions = options.pop('regions', ('blocks', ))
    regions = (regions, ) if isinstance(regions, str) else tuple(regions)
    unknown = [r for r in regions if r not in REGIONS]
    if unknown or not regions:
        raise ValueError(f'MVLT: compile regions must be among {REGIONS}, '
                         f'got {regions}.')
    if 'model' in regions and len(regions) > 1:
        raise ValueError("MVLT: compile region 'model' already holds the "
                         f'others; got {regions}.')
    bucket = int(options.pop('caption_bucket', DEFAULT_CAPTION_BUCKET))
    if bucket < 1:
        raise ValueError(f'MVLT: compile caption_bucket must be >= 1, got '
                         f'{bucket}.')
    options.setdefault('dynamic', False)
    return dict(regions=regions, caption_bucket=bucket, torch=options)


def compile_regions(model: nn.Module, options: dict) -> int:
    """Compile the ``blocks`` / ``decoder`` regions of an MVLT in place.

    Each region is compiled on its own (``nn.Module.compile``): blocks of
    equal shapes reuse one compiled graph, and code between regions stays
    eager, so nothing there can break a graph. A deep copy of the model
    (e.g. an EMA model) runs eager: ``nn.Module`` drops the compiled call
    when copied.

    Returns:
        int: How many modules were compiled.
    """
    modules = []
    if 'blocks' in options['regions']:
        modules += [
            block for stage in model.backbone.stages for block in stage.blocks
        ]
    if 'decoder' in options['regions'] and 'mir' in model.heads:
        modules.append(model.heads['mir'].decoder)
    for module in modules:
        module.compile(**options['torch'])
    return len(modules)


def recompile_scope(options: Optional[dict], num_regions: int):
    """Room for every compiled variant while a compiled model runs.

    Dynamo keeps compiled variants per code object and gives up after
    ``recompile_limit`` (8) of them, running eager from then on. All blocks
    share ``forward``'s code object, and each block (its own stochastic-
    depth rate), caption bucket and train / eval mode is a variant, so the
    limit is raised for the model's calls only (restored on exit).
    """
    if options is None or not num_regions:
        return nullcontext()
    buckets = 1 + 128 // options['caption_bucket']
    limit = max(8, num_regions * buckets * 2)
    return torch._dynamo.config.patch(
        recompile_limit=limit, accumulated_recompile_limit=max(256, limit))
