"""Opt-in ``torch.compile`` of MVLT (``model.compile``): by region or whole.
"""
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Union

import torch
import torch.nn as nn
from torch._dynamo.exc import FailOnRecompileLimitHit

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
            ``recompile_limit`` (int, default: room for every block, bucket
            and mode, :func:`recompile_scope`), and ``torch.compile``'s own
            options (``backend``, ``mode``, ``dynamic``, ``fullgraph``,
            ``options``); ``dynamic`` defaults to False (static shapes: the
            caption buckets bound them).

    Returns:
        dict | None: ``regions``, ``caption_bucket``, ``recompile_limit``
        (int or None) and ``torch`` (the ``torch.compile`` keyword
        arguments), or None when off.

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
    limit = options.pop('recompile_limit', None)
    if limit is not None and int(limit) < 1:
        raise ValueError(f'MVLT: compile recompile_limit must be >= 1, got '
                         f'{limit}.')
    options.setdefault('dynamic', False)
    return dict(
        regions=regions,
        caption_bucket=bucket,
        recompile_limit=None if limit is None else int(limit),
        torch=options)


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


def input_shapes(inputs: Any) -> Dict[str, tuple]:
    """Shapes of the tensors of a batch dict (for messages)."""
    if not isinstance(inputs, dict):
        return {}
    return {
        key: tuple(value.shape)
        for key, value in inputs.items() if isinstance(value, torch.Tensor)
    }


@contextmanager
def recompile_scope(options: Optional[dict],
                    num_regions: int,
                    inputs: Any = None) -> Iterator[None]:
    """Room for every compiled variant while a compiled model runs, and an
    error instead of a silent fall-back to eager past it.

    Dynamo keeps compiled variants per code object and gives up after
    ``recompile_limit`` (8) of them, running eager from then on with only
    a log line. All blocks share ``forward``'s code object, and each block
    (its own stochastic-depth rate), caption bucket and train / eval mode is
    a variant, so the limit is raised for the model's calls only (restored
    on exit) to ``compile.recompile_limit`` or ``max(8, regions x buckets x
    2)``; past it Dynamo fails (``fail_on_recompile_limit_hit``) and the
    error names the batch's shapes.

    Args:
        options: :func:`parse_compile`'s result (None: eager, no-op).
        num_regions: Compiled regions (0 with the ``'model'`` region).
        inputs: The batch dict, named in the error.

    Raises:
        RuntimeError: A compiled region met more shapes than the limit.
    """
    if options is None:
        yield
        return
    buckets = 1 + 128 // options['caption_bucket']
    limit = options.get('recompile_limit') or max(
        8,
        max(num_regions, 1) * buckets * 2)
    try:
        with torch._dynamo.config.patch(
                recompile_limit=limit,
                accumulated_recompile_limit=max(256, limit),
                fail_on_recompile_limit_hit=True):
            yield
    except FailOnRecompileLimitHit as err:
        raise RuntimeError(
            f'MVLT: torch.compile met more variants than its recompile '
            f'limit ({limit}) at a batch of shapes {input_shapes(inputs)}, '
            'and would run eager from now on. Keep shapes steady (a fixed '
            'img_size, model.compile.caption_bucket, drop_last for the '
            'training loader), raise model.compile.recompile_limit, or turn '
            'model.compile off.') from err
