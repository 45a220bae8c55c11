"""ImageNet initialisation of PVT-VL from PVT v1 checkpoints.

The PVT authors publish their ImageNet-1K classifiers (``pvt_tiny.pth``,
``pvt_small.pth``, ...) as plain state dicts with the keys
``patch_embed{k}.*``, ``pos_embed{k}`` (stage 4 holds an extra class-token
slot first), ``block{k}.{i}.*``, ``cls_token``, ``norm.*`` and ``head.*``.
This module renames them to the visual part of :class:`PVTVL`
(``stages.{k-1}.patch_embed``, ``stages.{k-1}.pos_embed``,
``stages.{k-1}.blocks.{i}``), resizes the position embeddings bicubically to
the configured image size and leaves the classifier out.

Use it from a config through the backbone's ``init_cfg``::

    backbone=dict(type='PVTVL', init_cfg=dict(
        type='PVTPretrained', checkpoint='data/pretrained/pvt_tiny.pth'))
"""
import logging
import math
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from timm.layers import resample_abs_pos_embed

from mvlt.registry import WEIGHT_INITIALIZERS
from mvlt.utils.checkpoint import load_checkpoint_file

#: Where the published PVT v1 ImageNet weights come from (nothing is
#: downloaded by mvlt).
PVT_V1_WEIGHTS_HELP = (
    'Download the ImageNet-1K PVT v1 classifier of the same size '
    '(pvt_tiny.pth for arch tiny, pvt_small.pth, pvt_medium.pth, '
    'pvt_large.pth) from the PVT authors (https://github.com/whai362/PVT, '
    '"classification" README, PVT v1 models), put it where the config '
    'points (for example data/pretrained/pvt_tiny.pth), or set '
    'model.backbone.init_cfg=None to train from scratch (paper table 4).')

# Checkpoint entries PVT-VL has no counterpart for: the ImageNet classifier,
# its final norm and the class token.
_CLASSIFIER_KEYS = re.compile(r'^(head\.|norm\.|cls_token$)')
_RENAMES = (
    (re.compile(r'^patch_embed(\d)\.(.+)$'),
     'stages.{stage}.patch_embed.{rest}'),
    (re.compile(r'^block(\d)\.(.+)$'), 'stages.{stage}.blocks.{rest}'),
    (re.compile(r'^pos_embed(\d)()$'), 'stages.{stage}.pos_embed'),
)


@dataclass
class LoadReport:
    """What :func:`load_pvt_v1_weights` did.

    Attributes:
        loaded: Backbone keys that received a checkpoint tensor.
        skipped: Checkpoint keys that were not used (classifier, class token,
            blocks the backbone does not have, unknown keys).
        missing: Visual backbone keys the checkpoint did not provide.
        resized: Backbone keys of position embeddings that were resized,
            with the (old, new) token grids.
    """
    loaded: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    resized: Dict[str, Tuple[tuple, tuple]] = field(default_factory=dict)


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """The state dict of a loaded checkpoint: its ``state_dict`` or
    ``model`` entry when it has one, without a ``module.`` prefix."""
    for key in ('state_dict', 'model'):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    return {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in checkpoint.items()
    }


def convert_pvt_v1_keys(
    state_dict: Mapping[str, torch.Tensor]
) -> Tuple[Dict[str, Tuple[str, torch.Tensor]], List[str]]:
    """Rename PVT v1 keys to PVT-VL keys.

    The class-token slot of a position embedding (stage 4 of PVT v1: h*w + 1
    tokens) is dropped here; the grid is resized later, when the target size
    is known.

    Args:
        state_dict: A PVT v1 classifier state dict.

    Returns:
        tuple: (PVT-VL key -> (checkpoint key, tensor), checkpoint keys that
        have no PVT-VL counterpart).
    """
    converted: Dict[str, Tuple[str, torch.Tensor]] = {}
    skipped: List[str] = []
    for key, value in state_dict.items():
        if _CLASSIFIER_KEYS.match(key):
            skipped.append(key)
            continue
        for pattern, template in _RENAMES:
            match = pattern.match(key)
            if match:
                stage = int(match.group(1)) - 1
                new_key = template.format(stage=stage, rest=match.group(2))
                if new_key.endswith('pos_embed'):
                    value = drop_class_token_slot(value)
                converted[new_key] = (key, value)
                break
        else:
            skipped.append(key)
    return converted, skipped


def drop_class_token_slot(pos_embed: torch.Tensor) -> torch.Tensor:
    """Remove the class-token slot of a PVT v1 position embedding.

    PVT v1 puts a class-token slot first in the stage-4 embedding, so it
    holds h*w + 1 tokens; the checkpoints of the authors' reference MVLT,
    which start from PVT v1, keep that layout and never read the slot.

    Args:
        pos_embed (Tensor): (1, N, C) position embedding of one stage.

    Returns:
        Tensor: (1, h*w, C): a copy without slot 0 when N is one more than a
        square (so a saved state dict does not keep the dropped slot's
        storage), else ``pos_embed`` itself.
    """
    num = pos_embed.shape[1]
    if math.isqrt(num)**2 != num and math.isqrt(num - 1)**2 == num - 1:
        return pos_embed[:, 1:].clone()
    return pos_embed


def _grid_side(key: str, value: torch.Tensor, target: torch.Tensor) -> int:
    """Side of the square token grid of a checkpoint position embedding."""
    side = math.isqrt(value.shape[1])
    if side * side != value.shape[1] or value.shape[-1] != target.shape[-1]:
        raise ValueError(
            f'PVTPretrained: {key} of the checkpoint has shape '
            f'{tuple(value.shape)}, which is not a square grid of width '
            f'{target.shape[-1]}; is it a PVT v1 checkpoint of the same '
            'width (tiny / small / medium / large all use 64-128-320-512)?')
    return side


def load_pvt_v1_weights(backbone: nn.Module,
                        state_dict: Mapping[str, torch.Tensor],
                        allow_missing: bool = False,
                        logger: str = 'current') -> LoadReport:
    """Copy PVT v1 ImageNet weights into the visual part of a PVT-VL.

    Args:
        backbone (PVTVL): The encoder; its text path is left untouched.
        state_dict: A PVT v1 classifier state dict (see the module doc).
        allow_missing (bool): Accept a checkpoint that leaves visual
            parameters uninitialised (for example a tiny checkpoint in a
            deeper arch); by default that is an error.
        logger (str): MMEngine logger name for the report.

    Returns:
        LoadReport: Loaded, skipped, missing and resized keys.

    Raises:
        ValueError: A tensor's shape does not fit (other than a position
            embedding grid), or visual keys are missing and
            ``allow_missing`` is off.
    """
    converted, skipped = convert_pvt_v1_keys(state_dict)
    own = backbone.state_dict()
    report = LoadReport(skipped=list(skipped))
    to_load: Dict[str, torch.Tensor] = {}
    for key, (source, value) in converted.items():
        if key not in own:
            # For example block{k}.{i} of a deeper PVT than the backbone.
            report.skipped.append(source)
            continue
        target = own[key]
        if key.endswith('.pos_embed') and value.shape != target.shape:
            side = _grid_side(key, value, target)
            stage = backbone.stages[int(key.split('.')[1])]
            new_grid = tuple(stage.num_patches)
            value = resample_abs_pos_embed(
                value,
                new_size=list(new_grid),
                old_size=[side, side],
                num_prefix_tokens=0,
                interpolation='bicubic',
                antialias=False)
            report.resized[key] = ((side, side), new_grid)
        if value.shape != target.shape:
            raise ValueError(
                f'PVTPretrained: checkpoint tensor for {key} has shape '
                f'{tuple(value.shape)} but the backbone expects '
                f'{tuple(target.shape)}; use the PVT v1 checkpoint of the '
                "backbone's arch.")
        to_load[key] = value.to(target.dtype)
    with torch.no_grad():
        for key, value in to_load.items():
            own[key].copy_(value)
    report.loaded = sorted(to_load)
    report.missing = sorted(
        k for k in visual_keys(backbone) if k not in to_load)
    _log_report(report, logger)
    if report.missing and not allow_missing:
        raise ValueError(
            f'PVTPretrained: the checkpoint leaves {len(report.missing)} '
            f'visual parameters of the backbone uninitialised (first: '
            f'{report.missing[:5]}); use the PVT v1 checkpoint of the same '
            'arch or pass allow_missing=True.')
    return report


def visual_keys(backbone: nn.Module) -> List[str]:
    """State-dict keys of the visual path of a PVT-VL (what ImageNet PVT
    weights can initialise): every stage entry except the text embedding
    and the text position embedding."""
    return [
        k for k in backbone.state_dict() if k.startswith('stages.')
        and '.text_embed.' not in k and not k.endswith('.text_pos_embed')
    ]


def _summarise(keys: List[str]) -> List[str]:
    """Keys with block parameters collapsed: ``block3.5.*``."""
    out: List[str] = []
    for key in sorted(keys):
        match = re.match(r'^(.*blocks?\.?\d*\.\d+\.)', key)
        short = match.group(1) + '*' if match else key
        if short not in out:
            out.append(short)
    return out


def _log_report(report: LoadReport, logger: str) -> None:
    print_log(
        f'PVTPretrained: loaded {len(report.loaded)} visual tensors; '
        f'skipped {len(report.skipped)} checkpoint keys '
        f'{_summarise(report.skipped)}; missing {len(report.missing)} visual '
        f'keys {_summarise(report.missing)}.',
        logger=logger)
    print_log(
        f'PVTPretrained: loaded keys {report.loaded}',
        logger=logger,
        level=logging.DEBUG)
    for key, (old, new) in report.resized.items():
        print_log(
            f'PVTPretrained: resized {key} bicubically from {old} to {new}.',
            logger=logger)


@WEIGHT_INITIALIZERS.register_module(name='PVTPretrained')
class PVTPretrainedInit:
    """Initialise the visual part of :class:`PVTVL` from a PVT v1 checkpoint.

    A weight initializer for MMEngine's ``init_cfg``: it runs when the runner
    calls ``init_weights`` (before ``load_from`` / resume, which overwrite
    it).

    Args:
        checkpoint (str): Local path of a PVT v1 ImageNet checkpoint (plain
            state dict, or one under ``model`` / ``state_dict``); URLs are
            refused because mvlt downloads nothing.
        map_location (str): Where tensors are loaded.
        allow_missing (bool): See :func:`load_pvt_v1_weights`.

    Raises:
        FileNotFoundError: The checkpoint does not exist; the message says
            where to get it (nothing is downloaded).
    """

    def __init__(self,
                 checkpoint: str,
                 map_location: str = 'cpu',
                 allow_missing: bool = False) -> None:
        self.checkpoint = checkpoint
        self.map_location = map_location
        self.allow_missing = allow_missing
        self.report: Optional[LoadReport] = None

    def __call__(self, module: nn.Module) -> None:
        if not hasattr(module, 'stages') or not hasattr(
                module, 'text_embeddings'):
            raise TypeError(
                'PVTPretrained initialises a PVTVL backbone; put it in '
                'model.backbone.init_cfg, not on '
                f'{type(module).__name__}.')
        path = osp.expanduser(str(self.checkpoint))
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'PVTPretrained: ImageNet checkpoint {path!r} does not exist. '
                + PVT_V1_WEIGHTS_HELP)
        # The one checkpoint reader (weights-only), as for every mvlt load.
        checkpoint = load_checkpoint_file(path, self.map_location)
        print_log(
            f'PVTPretrained: load PVT v1 weights from {path}',
            logger='current')
        self.report = load_pvt_v1_weights(module,
                                          unwrap_state_dict(checkpoint),
                                          self.allow_missing)
        if hasattr(module, '_params_init_info'):
            update_init_info(
                module, init_info=f'PVTPretrained: load from {path}')
