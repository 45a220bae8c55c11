"""``--mode embed``: the embedding rate of the ITC image and caption towers
against CLIP ViT-B/32 (``open_clip``, random weights, nothing downloaded),
side by side in one process, with PyTorch and with ONNX Runtime.

Both models are exported with :func:`mvlt.deploy.onnx_export.export_onnx`'s
exporter settings (TorchScript-based, opset 17, dynamic batch) and their
ONNX Runtime outputs checked against PyTorch. Every round runs every
(model, tower, backend) once, rotated (``interleaved_timings``), so all see
the same machine load; the figures are per-round ratios. Multiply-adds per
image / caption come from ``torch.utils.flop_counter`` (FLOPs / 2).
"""
import argparse
import copy
import os.path as osp
import warnings
from typing import Any, Callable, Dict, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config

from .common import Variant, img_size_of, text_len_of
from .measure import count_flops, interleaved_timings, summarize

#: CLIP ViT-B/32 as FashionCLIP runs it: 224 px images, 77-token captions.
CLIP_MODEL, CLIP_SIZE, CLIP_CONTEXT = 'ViT-B-32', 224, 77


def import_open_clip():
    """``open_clip``, or an ImportError saying how to install it."""
    try:
        import open_clip
    except ImportError:
        raise ImportError('--mode embed compares with CLIP from open_clip: '
                          'pip install -r requirements/optional.txt') from None
    return open_clip


class _Tower(nn.Module):
    """``fn(*inputs)`` as a module, for the exporter."""

    def __init__(self, owner: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.owner = owner
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(*inputs)


def _export(module: nn.Module, inputs: Dict[str, torch.Tensor], path: str,
            threads: int):
    """Export ``module`` (dynamic batch) and open it with ONNX Runtime;
    returns (session, its feed, largest |ONNX Runtime - PyTorch|)."""
    import onnxruntime
    module.eval()
    names = list(inputs)
    axes = {name: {0: 'batch'} for name in names + ['out']}
    # With gradients on: under no_grad nn.MultiheadAttention (CLIP) takes
    # its fused fast path, an op ONNX lacks.
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            module,
            tuple(inputs.values()),
            path,
            input_names=names,
            output_names=['out'],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False)
    with torch.no_grad():
        want = module(*inputs.values()).numpy()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])
    feed = {k: v.numpy() for k, v in inputs.items()}
    got = session.run(None, feed)[0]
    return session, feed, float(np.abs(got - want).max())


def _towers(cfg: Config, args: argparse.Namespace, device: torch.device,
            batch: int) -> Tuple[Dict[str, tuple], dict]:
    """name -> (module, inputs) of the four towers, and their settings."""
    open_clip = import_open_clip()
    if 'itc' not in cfg.model.heads or cfg.model.heads.itc is None:
        # The benchmark configs train no ITC head; the towers need one.
        cfg = copy.deepcopy(cfg)
        cfg.model.heads.itc = cfg.itc_head
    mvlt = Variant('fast', cfg, device, train=False).model
    mvlt.trim_padding = False
    pre = mvlt.data_preprocessor
    size, text_len = img_size_of(cfg, args), text_len_of(cfg, args)
    length = args.caption_len[0] if args.caption_len else text_len
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(
        5, pre.vocab_size, (batch, text_len), generator=generator)
    mask = (torch.arange(text_len) < length).long().expand(batch, -1)
    ids = ids.masked_fill(mask == 0, pre.pad_token_id).contiguous()
    torch.manual_seed(0)
    clip = open_clip.create_model(CLIP_MODEL, pretrained=None).eval()
    clip_ids = torch.randint(
        1, 49407, (batch, CLIP_CONTEXT), generator=generator)
    return dict(
        mvlt_image=(_Tower(mvlt, lambda x: mvlt.embed_images(x)),
                    dict(
                        images=torch.randn(
                            batch, 3, size, size, generator=generator))),
        clip_image=(
            _Tower(clip, lambda x: F.normalize(clip.encode_image(x), dim=-1)),
            dict(
                images=torch.randn(
                    batch, 3, CLIP_SIZE, CLIP_SIZE, generator=generator))),
        mvlt_caption=(_Tower(mvlt, lambda i, m: mvlt.embed_texts(i, m)),
                      dict(input_ids=ids, attention_mask=mask.contiguous())),
        clip_caption=(_Tower(
            clip, lambda t: F.normalize(clip.encode_text(t), dim=-1)),
                      dict(text=clip_ids)),
    ), dict(
        mvlt_img_size=size,
        mvlt_text_len=text_len,
        mvlt_caption_tokens=length,
        clip=f'{CLIP_MODEL} ({CLIP_SIZE} px, {CLIP_CONTEXT} tokens, random '
        'weights)')


def run_embed(cfg: Config, args: argparse.Namespace, device: torch.device,
              work_dir: str) -> Dict[str, Any]:
    """Images / captions per second of both models on both backends."""
    if device.type != 'cpu':
        raise ValueError('--mode embed compares CPU backends; pass '
                         '--device cpu.')
    batch = args.batch_size or 32
    threads = torch.get_num_threads()
    towers, settings = _towers(cfg, args, device, batch)
    steps: Dict[str, Callable[[], Any]] = {}
    result: Dict[str, Any] = dict(
        settings=dict(settings, batch_size=batch, threads=threads),
        macs_per_item={},
        max_abs_onnx_difference={})
    for name, (module, inputs) in towers.items():
        values = tuple(inputs.values())
        # Counted with gradients on (nothing is differentiated): the fused
        # attention fast path taken under no_grad has no FLOP formula.
        with torch.enable_grad():
            flops, _ = count_flops(lambda m=module, v=values: m(*v))
        result['macs_per_item'][name] = flops / 2 / batch
        session, feed, diff = _export(module, inputs,
                                      osp.join(work_dir, f'{name}.onnx'),
                                      threads)
        result['max_abs_onnx_difference'][name] = diff

        def torch_step(m=module, v=values):
            with torch.inference_mode():
                return m(*v)

        steps[f'{name}/pytorch'] = torch_step
        steps[f'{name}/onnxruntime'] = \
            lambda s=session, f=feed: s.run(None, f)
    times = interleaved_timings(
        steps, args.iters, args.warmup, device, clock=args.clock)
    rates = {
        name: [batch / s for s in seconds]
        for name, seconds in times.items()
    }
    result['items_per_s'] = {k: summarize(v) for k, v in rates.items()}
    ratios = {}
    for tower in ('image', 'caption'):
        for backend in ('pytorch', 'onnxruntime'):
            ratios[f'{tower}/{backend}'] = summarize([
                a / b for a, b in zip(rates[f'mvlt_{tower}/{backend}'],
                                      rates[f'clip_{tower}/{backend}'])
            ])
        best = [
            max(a, b) / max(c, d)
            for a, b, c, d in zip(rates[f'mvlt_{tower}/pytorch'],
                                  rates[f'mvlt_{tower}/onnxruntime'],
                                  rates[f'clip_{tower}/pytorch'],
                                  rates[f'clip_{tower}/onnxruntime'])
        ]
        ratios[f'{tower}/faster_backend'] = summarize(best)
    result['mvlt_over_clip'] = ratios
    return result


def print_embed(result: Dict[str, Any]) -> None:
    """The figures as a table."""
    print(f"\n== embed: {result['settings']}")
    print('| tower | backend | items/s (median, p25-p75) | MACs / item |')
    print('|---|---|---|---|')
    for name, rate in result['items_per_s'].items():
        tower, backend = name.split('/')
        print(f"| {tower} | {backend} | {rate['median']:.2f} "
              f"({rate['p25']:.2f}-{rate['p75']:.2f}) | "
              f"{result['macs_per_item'][tower] / 1e9:.2f} G |")
    for name, ratio in result['mvlt_over_clip'].items():
        print(f"MVLT / CLIP {name}: {ratio['median']:.2f}x "
              f"({ratio['p25']:.2f}-{ratio['p75']:.2f})")
    print('max |ONNX Runtime - PyTorch|:', {
        k: f'{v:.2g}'
        for k, v in result['max_abs_onnx_difference'].items()
    })
