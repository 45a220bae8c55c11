"""Export the ITC image tower, the ITC text tower and the ITM matcher of an
MVLT to ONNX, each checked against PyTorch with ONNX Runtime (needs torch,
onnx and onnxruntime: requirements/optional.txt).

The graphs take model inputs as the data preprocessor makes them
(normalised float32 images (B, 3, H, W); int64 ``input_ids`` /
``attention_mask`` (B, L)) and return what the model's scoring API returns
(:meth:`MVLT.embed_images`, :meth:`MVLT.embed_texts`,
:meth:`MVLT.score_pairs`). Batch is dynamic in all three; the caption length
L is dynamic (1 to ``text_len``) in the text tower and the matcher.
The exporter is PyTorch's TorchScript-based one (``dynamo=False``), which
needs no onnxscript; the torch.export-based one (``dynamo=True``, with
``torch.export.Dim`` batch and length) gave the same outputs on the nano
text tower (within 2.1e-7 of PyTorch) but adds onnxscript to the
requirements.
"""
import copy
import json
import os
import os.path as osp
import shutil
import time
import warnings
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from mvlt.apis.gallery import file_sha256
from mvlt.version import __version__
from .manifest import (EXPORT_FORMAT, GRAPH_FILES, MANIFEST_FILE, VOCAB_FILE,
                       ManifestMismatchError)

#: Default ONNX opset (ONNX Runtime >= 1.14 runs it).
OPSET = 17
#: Largest |ONNX Runtime - PyTorch| accepted at export (embeddings and ITM
#: probabilities; float32 kernels differ in summation order only).
TOLERANCE = 1e-4


class _ImageTower(nn.Module):
    """Normalised images -> L2-normalised ITC image embeddings (B, D)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predict_outputs(dict(
            images=images), ('itc', ))['itc_image_embeds'].float()


class _TextTower(nn.Module):
    """Captions -> L2-normalised ITC text embeddings (B, D)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.predict_outputs(
            dict(input_ids=input_ids, attention_mask=attention_mask),
            ('itc', ))['itc_text_embeds'].float()


class _Matcher(nn.Module):
    """Image-caption pairs -> ITM matching probabilities (B,)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.predict_outputs(
            dict(
                images=images,
                input_ids=input_ids,
                attention_mask=attention_mask), ('itm', ))['itm_score']


def sample_inputs(preprocessor, batch: int, length: int,
                  seed: int) -> Dict[str, torch.Tensor]:
    """Generated model inputs: normal images and captions of random lengths
    (1 to ``length`` real tokens after [CLS], [PAD] after them).

    Returns:
        dict: ``images`` (batch, 3, H, W) float32, ``input_ids`` /
        ``attention_mask`` (batch, length) int64.
    """
    generator = torch.Generator().manual_seed(seed)
    height, width = preprocessor.img_size
    images = torch.randn(batch, 3, height, width, generator=generator)
    lengths = torch.randint(2, length + 1, (batch, ), generator=generator)
    lengths[0] = length  # one caption fills every column
    ids = torch.randint(
        5, preprocessor.vocab_size, (batch, length), generator=generator)
    mask = (torch.arange(length)[None] < lengths[:, None]).long()
    ids = ids.masked_fill(mask == 0, preprocessor.pad_token_id)
    ids[:, 0] = preprocessor.tokenizer.cls_token_id
    return dict(images=images, input_ids=ids, attention_mask=mask)


def _graph_specs(model: nn.Module) -> Dict[str, tuple]:
    """name -> (module, input names, output name, dynamic axes)."""
    batch = {0: 'batch'}
    caption = {0: 'batch', 1: 'length'}
    specs = {}
    if 'itc' in model.heads:
        specs['image'] = (_ImageTower(model), ('images', ), 'image_embeds',
                          dict(images=batch, image_embeds=batch))
        specs['text'] = (_TextTower(model), ('input_ids', 'attention_mask'),
                         'text_embeds',
                         dict(
                             input_ids=caption,
                             attention_mask=caption,
                             text_embeds=batch))
    if 'itm' in model.heads:
        specs['itm'] = (_Matcher(model), ('images', 'input_ids',
                                          'attention_mask'), 'itm_score',
                        dict(
                            images=batch,
                            input_ids=caption,
                            attention_mask=caption,
                            itm_score=batch))
    if not specs:
        raise KeyError('export_onnx needs an ITC or an ITM head; the model '
                       f'builds only {sorted(model.heads)}.')
    return specs


def check_graph(path: str, module: nn.Module, inputs: Dict[str, torch.Tensor],
                names: Tuple[str, ...]) -> float:
    """Largest |ONNX Runtime - PyTorch| of ``module`` on ``inputs``."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])
    feed = {name: inputs[name].numpy() for name in names}
    got = session.run(None, feed)[0]
    with torch.no_grad():
        want = module(*(inputs[name] for name in names)).numpy()
    if got.shape != want.shape:
        raise ManifestMismatchError(
            f'{path}: ONNX Runtime gives shape {got.shape}, PyTorch '
            f'{want.shape}.')
    return float(np.abs(got.astype(np.float64) - want).max())


def _preprocessing_facts(preprocessor) -> dict:
    return dict(
        img_size=list(preprocessor.img_size),
        mean=[float(v) for v in preprocessor.mean.flatten()],
        std=[float(v) for v in preprocessor.std.flatten()],
        foreground_crop=copy.deepcopy(preprocessor.foreground_crop),
        resize_kernel=preprocessor.resize_kernel,
        resize='bilinear, half-pixel centres (cv2.INTER_LINEAR; crops over '
        '8 output sides first shrunk by area averaging: mvlt.image)',
        input='RGB, (B, 3, H, W) float32, (pixel - mean) / std')


def export_onnx(model: nn.Module,
                checkpoint: str,
                out_dir: str,
                tokenizer_cfg: dict,
                config_source: str = '',
                opset: int = OPSET,
                tolerance: float = TOLERANCE,
                check_batches: Tuple[int, ...] = (1, 3),
                log=print) -> dict:
    """Export, check and describe the graphs of a loaded model.

    Each graph is traced on a batch of 2 full-length captions, then run by
    ONNX Runtime on generated inputs of the ``check_batches`` sizes, with
    full-length and with shorter captions; the largest difference from
    PyTorch is logged, recorded in the manifest and must stay within
    ``tolerance``.

    Args:
        model: An :class:`~mvlt.models.MVLT` with its checkpoint loaded.
        checkpoint: That checkpoint's file (its SHA-256 goes into the
            manifest).
        out_dir: Folder of the graphs, ``vocab.txt`` and ``manifest.json``.
        tokenizer_cfg: ``model.data_preprocessor.tokenizer`` of the config.
        config_source: The config path, recorded.
        opset: ONNX opset.
        tolerance: Largest accepted difference.
        check_batches: Batch sizes checked (other than the traced 2, so
            that a batch fixed in the graph is caught).
        log: Where progress lines go.

    Returns:
        dict: The manifest.

    Raises:
        ManifestMismatchError: A graph differs from PyTorch by more than
            ``tolerance``.
    """
    import onnx
    import onnxruntime
    model = copy.deepcopy(model).cpu().eval()
    # The trim is data-dependent (it would be traced as a constant length);
    # with the key padding mask the untrimmed pass gives the same outputs.
    model.trim_padding = False
    preprocessor = model.data_preprocessor
    os.makedirs(out_dir, exist_ok=True)
    vocab_source = tokenizer_cfg['vocab_file'] if isinstance(
        tokenizer_cfg, dict) else tokenizer_cfg
    if osp.isdir(vocab_source):
        vocab_source = osp.join(vocab_source, 'vocab.txt')
    shutil.copyfile(vocab_source, osp.join(out_dir, VOCAB_FILE))
    text_len = preprocessor.text_len
    trace = sample_inputs(preprocessor, 2, text_len, seed=0)
    graphs = {}
    for name, (module, names, output, axes) in _graph_specs(model).items():
        # A new wrapper is in training mode, which the exporter restores on
        # the model after tracing (dropout would then be on).
        module.eval()
        path = osp.join(out_dir, GRAPH_FILES[name])
        start = time.perf_counter()
        # The backbone's shape checks trace as Python bools (TracerWarning);
        # that the batch and length stay dynamic is checked below, on other
        # batch sizes and lengths than the traced ones.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            warnings.simplefilter('ignore', DeprecationWarning)
            torch.onnx.export(
                module,
                tuple(trace[n] for n in names),
                path,
                input_names=list(names),
                output_names=[output],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False)
        onnx.checker.check_model(path, full_check=True)
        lengths = (text_len, max(2, text_len // 2)) if 'input_ids' in names \
            else (text_len, )
        diff = 0.0
        for seed, batch in enumerate(check_batches, 1):
            for length in lengths:
                inputs = sample_inputs(preprocessor, batch, length, seed)
                diff = max(diff, check_graph(path, module, inputs, names))
        log(f'{GRAPH_FILES[name]}: max |ONNX Runtime - PyTorch| = '
            f'{diff:.3g} (batches {list(check_batches)}, caption lengths '
            f'{list(lengths) if "input_ids" in names else "-"}; bound '
            f'{tolerance:g}), {time.perf_counter() - start:.1f} s')
        if not diff <= tolerance:
            raise ManifestMismatchError(
                f'{path} differs from PyTorch by {diff:.3g} > {tolerance:g}; '
                'the graph is not usable (try another --opset).')
        graphs[name] = dict(
            file=GRAPH_FILES[name],
            sha256=file_sha256(path),
            inputs=list(names),
            output=output,
            dynamic_axes={
                k: dict(v)
                for k, v in axes.items()
            },
            max_abs_diff=diff)
    tok = dict(tokenizer_cfg) if isinstance(tokenizer_cfg, dict) else dict(
        vocab_file=tokenizer_cfg)
    manifest = dict(
        format=EXPORT_FORMAT,
        opset=opset,
        tolerance=tolerance,
        checkpoint=dict(
            path=osp.abspath(checkpoint), sha256=file_sha256(checkpoint)),
        config=config_source,
        graphs=graphs,
        embed_dim=int(model.heads['itc'].embed_dim)
        if 'itc' in model.heads else None,
        preprocessing=_preprocessing_facts(preprocessor),
        tokenizer=dict(
            vocab_file=VOCAB_FILE,
            source=vocab_source,
            sha256=file_sha256(osp.join(out_dir, VOCAB_FILE)),
            do_lower_case=bool(tok.get('do_lower_case', True)),
            strip_accents=tok.get('strip_accents'),
            text_len=text_len),
        versions=dict(
            mvlt=__version__,
            torch=torch.__version__,
            onnxruntime=onnxruntime.__version__),
        created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
    with open(osp.join(out_dir, MANIFEST_FILE), 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=2)
    return manifest


def load_for_export(config: str,
                    checkpoint: str,
                    cfg_options: Optional[dict] = None):
    """(model, config) of an inferencer on the CPU, for :func:`export_onnx`.
    """
    from mvlt.apis import MVLTInferencer
    inferencer = MVLTInferencer(config, checkpoint, cfg_options=cfg_options)
    return inferencer.model, inferencer.cfg
