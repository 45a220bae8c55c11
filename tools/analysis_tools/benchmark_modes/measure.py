"""Measuring tools of the speed benchmark (tools/analysis_tools/benchmark.py).

The machine's own matrix-multiply rate, FLOPs of a callable
(``torch.utils.flop_counter``, with the CPU flash-attention kernels and
oneDNN's fused linear counted too), peak memory of a step, synthetic MVLT
inputs that need no data set and no vocabulary on disk, and the settings
one config changes relative to another.
"""
import functools
import math
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.structures import BaseDataElement
from torch.utils.flop_counter import (FlopCounterMode,
                                      sdpa_backward_flop_count,
                                      sdpa_flop_count)

from mvlt.text.tokenizer import SPECIAL_TOKENS, write_vocab_file

#: Clocks of the timings: wall time, or CPU time of this process.
CLOCKS = dict(wall=time.perf_counter, process=time.process_time)


def synchronize(device: Union[str, torch.device]) -> None:
    """Wait for the device's queued work (no-op on CPU)."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def matmul_rate(dtype: torch.dtype = torch.float32,
                device: Union[str, torch.device] = 'cpu',
                size: Optional[int] = None,
                repeats: int = 3,
                kernel: str = 'mm',
                clock: str = 'wall') -> float:
    """Measured rate of a square matrix product in GFLOP/s (median).

    Args:
        dtype (torch.dtype): Element type (float32, bfloat16, float16).
        device: Where to run.
        size (int, optional): Matrix side; default 2048 on CPU, 8192 on GPU.
        repeats (int): Timed products (after one warm-up).
        kernel (str): ``'mm'`` (``torch.mm``: MKL / cuBLAS) or ``'onednn'``
            (oneDNN's linear kernel, CPU only; faster than MKL on AMD CPUs).
        clock (str): ``'wall'`` or ``'process'`` (CPU time), as in
            :func:`interleaved_timings`.
    """
    device = torch.device(device)
    size = size or (8192 if device.type == 'cuda' else 2048)
    left = torch.randn(size, size, device=device).to(dtype)
    right = torch.randn(size, size, device=device).to(dtype)
    if kernel == 'mm':
        product = functools.partial(torch.mm, left, right)
    elif kernel == 'onednn':
        product = functools.partial(torch.ops.mkldnn._linear_pointwise, left,
                                    right, None, 'none', [], '')
    else:
        raise ValueError(f"kernel must be 'mm' or 'onednn', got {kernel!r}.")
    now = CLOCKS[clock]
    with torch.no_grad():
        product()
        synchronize(device)
        rates = []
        for _ in range(repeats):
            start = now()
            product()
            synchronize(device)
            rates.append(2 * size**3 / (now() - start) / 1e9)
    return statistics.median(rates)


def _sdpa_formula(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_backward_formula(grad_out_shape, query_shape, key_shape, value_shape,
                           *args, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                    value_shape)


def _linear_pointwise_formula(input_shape, weight_shape, *args,
                              **kwargs) -> int:
    """oneDNN's fused linear: 2 * rows * in * out, as for ``aten.addmm``."""
    return 2 * math.prod(input_shape) * weight_shape[0]


def _extra_flop_formulas() -> dict:
    """Formulas torch's counter lacks, passed to each ``FlopCounterMode``
    (torch's global ``flop_registry`` is left alone): the CPU
    flash-attention kernels and oneDNN's fused linear
    (``torch.ops.mkldnn._linear_pointwise``, the fast path's CPU inference
    products in ``mvlt/models/layers/onednn_linear.py``)."""
    aten = torch.ops.aten
    formulas = {}
    if hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        formulas[aten._scaled_dot_product_flash_attention_for_cpu] = \
            _sdpa_formula
        formulas[aten._scaled_dot_product_flash_attention_for_cpu_backward] \
            = _sdpa_backward_formula
    if hasattr(torch.ops.mkldnn, '_linear_pointwise'):
        formulas[torch.ops.mkldnn._linear_pointwise] = \
            _linear_pointwise_formula
    return formulas


def count_flops(fn: Callable[[], Any]) -> Tuple[int, Any]:
    """FLOPs (multiply-add = 2) of everything ``fn`` runs, and its result.

    Counts matrix products (oneDNN's fused CPU linear included),
    convolutions and attention (the CPU flash-attention kernels included),
    forward and backward alike; element-wise work is not counted.
    """
    counter = FlopCounterMode(
        display=False, custom_mapping=_extra_flop_formulas())
    with counter:
        result = fn()
    return counter.get_total_flops(), result


class PeakMemory:
    """Peak tensor memory of the code inside ``with PeakMemory(...) as peak:``.

    CUDA: the caching allocator's ``max_memory_allocated``. CPU: torch's
    ``MemTracker`` (``torch.distributed._tools.mem_tracker``), which follows
    every tensor storage that operators create or read, autograd's saved
    tensors and gradients included. Both count tensor bytes, not the
    allocator's cache or the rest of the process.

    Args:
        device: Where the tensors live.
        modules (Sequence[nn.Module]): Modules whose parameters and buffers
            exist before the block (CPU: counted from the start).
        optimizers (Sequence[Optimizer]): Optimizers whose states exist
            before the block (likewise).

    Attributes:
        start_bytes (int): Memory in use on entry.
        peak_bytes (int): Highest memory in use inside the block.
        increase_bytes (int): ``peak_bytes - start_bytes``: what the block
            itself needed (activations, gradients, temporary buffers).
        end_bytes (int): Memory still in use on exit (e.g. what a forward
            pass keeps for backward).
    """

    def __init__(
        self,
        device: Union[str, torch.device] = 'cpu',
        modules: Sequence[torch.nn.Module] = (),
        optimizers: Sequence[torch.optim.Optimizer] = ()
    ) -> None:
        self.device = torch.device(device)
        self.modules, self.optimizers = tuple(modules), tuple(optimizers)
        self.start_bytes = self.peak_bytes = self.increase_bytes = 0
        self.end_bytes = 0
        self._tracker = None

    def _total(self, kind: str) -> int:
        snapshot = self._tracker.get_tracker_snapshot(kind)
        return int(snapshot.get(self.device, {}).get('Total', 0))

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
            return self
        from torch.distributed._tools.mem_tracker import MemTracker
        self._tracker = MemTracker()
        self._tracker.track_external(*self.modules, *self.optimizers)
        self._tracker.__enter__()
        self.start_bytes = self._total('current')
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
            self.end_bytes = torch.cuda.memory_allocated(self.device)
        else:
            self.end_bytes = self._total('current')
            self._tracker.__exit__(*exc)
            self.peak_bytes = self._total('peak')
            self._tracker = None
        self.increase_bytes = self.peak_bytes - self.start_bytes


def write_throwaway_vocab(out_dir: str,
                          vocab_size: int = 30522,
                          base_file: Optional[str] = None) -> str:
    """Write a ``vocab.txt`` of ``vocab_size`` entries for speed runs.

    Without ``base_file`` the five special tokens of
    :func:`mvlt.utils.build_vocab` come first ([PAD]=0, [UNK]=1, [CLS]=2,
    [SEP]=3, [MASK]=4), then made-up word pieces: the size, which is all
    that matters for the model's speed, equals bert-base-uncased's without
    the file. With ``base_file`` its entries come first (so that real
    captions tokenise as with it), then made-up pieces up to the size.

    Raises:
        ValueError: ``vocab_size`` leaves no room for the special tokens, or
            ``base_file`` has more entries than ``vocab_size``.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f'vocab_size must exceed {len(SPECIAL_TOKENS)}, got '
                         f'{vocab_size}.')
    entries = list(SPECIAL_TOKENS)
    if base_file is not None:
        with open(base_file, encoding='utf-8') as f:
            entries = [line.rstrip('\n') for line in f if line.strip()]
        if len(entries) > vocab_size:
            raise ValueError(f'{base_file} has {len(entries)} entries, more '
                             f'than vocab_size={vocab_size}.')
    words = [f'w{i}' for i in range(vocab_size - len(entries))]
    return write_vocab_file(entries + words, out_dir)


def synthetic_samples(num: int,
                      img_size: Union[int, Sequence[int]],
                      text_len: int,
                      vocab_size: int = 30522,
                      caption_len: Union[int, Sequence[int], None] = None,
                      num_categories: int = 48,
                      num_subcategories: int = 122,
                      special_ids: Tuple[int, int] = (2, 3),
                      seed: int = 0) -> dict:
    """A collated batch as ``PackMVLTInputs`` + ``pseudo_collate`` give it.

    Random uint8 images, captions ``[CLS] w ... w [SEP] [PAD] ...`` of
    random word pieces, one product per sample and random category labels.

    Args:
        num (int): Samples.
        img_size (int | tuple): Image side or (H, W).
        text_len (int): Padded caption length L.
        vocab_size (int): Word pieces are drawn from ids 5 .. vocab_size - 1.
        caption_len (int | tuple, optional): Tokens per caption including
            [CLS] / [SEP]: a number, a (min, max) range drawn uniformly, or
            None for full-length captions (no padding).
        num_categories, num_subcategories (int): Label ranges.
        special_ids (tuple): Ids of [CLS] and [SEP].
        seed (int): Seed of the draws.

    Returns:
        dict: ``inputs`` (dict of lists: ``images`` uint8 (3, H, W),
        ``input_ids`` and ``attention_mask`` (L,)) and ``data_samples``.
    """
    height, width = (img_size, img_size) if isinstance(img_size, int) else \
        tuple(img_size)
    generator = torch.Generator().manual_seed(seed)
    if caption_len is None:
        low = high = text_len
    elif isinstance(caption_len, int):
        low = high = caption_len
    else:
        low, high = caption_len
    low, high = max(2, min(low, text_len)), max(2, min(high, text_len))
    lengths = torch.randint(low, high + 1, (num, ), generator=generator)
    input_ids = torch.randint(
        5, vocab_size, (num, text_len), generator=generator)
    positions = torch.arange(text_len)[None]
    attention_mask = (positions < lengths[:, None]).long()
    input_ids[:, 0] = special_ids[0]
    input_ids[torch.arange(num), lengths - 1] = special_ids[1]
    input_ids = input_ids * attention_mask  # [PAD] = 0
    images = torch.randint(
        0,
        256, (num, 3, height, width),
        dtype=torch.uint8,
        generator=generator)
    categories = torch.randint(
        num_categories, (num, ), generator=generator).tolist()
    subcategories = torch.randint(
        num_subcategories, (num, ), generator=generator).tolist()
    samples = [
        BaseDataElement(
            product_index=i,
            category_label=categories[i],
            subcategory_label=subcategories[i]) for i in range(num)
    ]
    return dict(
        inputs=dict(
            images=list(images),
            input_ids=list(input_ids),
            attention_mask=list(attention_mask)),
        data_samples=samples)


def config_changes(base: Any, derived: Any, prefix: str = '') -> dict:
    """The settings ``derived`` changes or adds relative to ``base``.

    Both are (nested) dicts, e.g. the ``model`` and ``optim_wrapper`` of a
    config and of its baseline (``configs/mvlt/benchmark/``). Returns
    dotted key -> value of ``derived``, as ``Config.merge_from_dict`` (and
    ``--cfg-options``) takes it; keys ``derived`` drops are not listed.
    """
    if isinstance(base, dict) and isinstance(derived, dict):
        changes = {}
        for key, value in derived.items():
            name = f'{prefix}.{key}' if prefix else str(key)
            if key not in base:
                changes[name] = value
            else:
                changes.update(config_changes(base[key], value, name))
        return changes
    return {} if base == derived else {prefix: derived}


def growth_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """Least-squares slope of log(time) against log(size)."""
    if len(sizes) < 2:
        raise ValueError('growth_exponent needs at least two points.')
    xs = [math.log(s) for s in sizes]
    ys = [math.log(t) for t in times]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    den = sum((x - mean_x)**2 for x in xs)
    return num / den


def summarize(values: Sequence[float]) -> Dict[str, float]:
    """Median, quartiles, min and max of a list of measurements."""
    values = sorted(values)
    if len(values) == 1:
        quartiles = (values[0], values[0])
    else:
        cuts = statistics.quantiles(values, n=4, method='inclusive')
        quartiles = (cuts[0], cuts[2])
    return dict(
        median=statistics.median(values),
        p25=quartiles[0],
        p75=quartiles[1],
        min=values[0],
        max=values[-1],
        n=len(values))


def interleaved_timings(steps: Dict[str, Callable[[], Any]],
                        iters: int,
                        warmup: int,
                        device: Union[str, torch.device] = 'cpu',
                        between: Optional[Callable[[], Any]] = None,
                        clock: str = 'wall') -> Dict[str, List[float]]:
    """Seconds per call of each step, the steps alternating call by call.

    Every round runs each step once (in rotated order, so that no step
    always follows the same one); on a shared machine all steps then see the
    same load. ``between`` (e.g. a matmul-rate probe) runs once per round and
    its results are returned under ``'between'``.

    Args:
        clock (str): ``'wall'`` (``time.perf_counter``) or ``'process'``
            (``time.process_time``: CPU seconds of this process, all its
            threads; on a CPU shared with other jobs and with one thread it
            measures the work of a step without the time other jobs take).

    Raises:
        ValueError: An unknown ``clock``.
    """
    if clock not in CLOCKS:
        raise ValueError(f'clock must be one of {sorted(CLOCKS)}, got '
                         f'{clock!r}.')
    now = CLOCKS[clock]
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    synchronize(device)
    times: Dict[str, List[float]] = {name: [] for name in names}
    extra: List[Any] = []
    for round_index in range(iters):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = now()
            steps[name]()
            synchronize(device)
            times[name].append(now() - start)
        if between is not None:
            extra.append(between())
    if between is not None:
        times['between'] = extra
    return times
