"""Models by name from the metafile: ``list_models`` and ``get_model``, as
mmpretrain's ``mmpretrain.list_models`` / ``mmpretrain.get_model``.

The names, configs and (when released) weights come from
``configs/mvlt/metafile.yml``, listed in the repository's
``model-index.yml``. Nothing is downloaded: weights are a local checkpoint
path given as ``pretrained``, or the metafile's ``Weights`` when that is a
local file.
"""
import copy
import fnmatch
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

import yaml
from mmengine.config import Config

#: The repository root (configs/ and model-index.yml live there).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_INDEX = osp.join(REPO_ROOT, 'model-index.yml')


@dataclass
class ModelInfo:
    """One model of the metafile.

    Attributes:
        name: Its name (``Name``).
        config: Absolute path of its config.
        weights: Its released weights (``Weights``), if any.
        collection: The collection it belongs to.
        results: The metafile's ``Results`` (task, data set, metrics).
        aliases: Other names it answers to (``Alias``: names it had before
            ``Name`` became its config file's name).
    """
    name: str
    config: str
    weights: Optional[str] = None
    collection: Optional[str] = None
    results: List[dict] = field(default_factory=list)
    aliases: List[str] = field(default_factory=list)


def _read_yaml(path: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} does not exist: the model zoo reads the metafiles of a '
            'repository checkout (model-index.yml and configs/).')
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f) or {}


def load_model_index(index: str = MODEL_INDEX) -> Dict[str, ModelInfo]:
    """Every model of the metafiles that ``index`` imports, by name.

    Raises:
        FileNotFoundError: A missing index, metafile or config.
        ValueError: A name or alias listed twice.
    """
    root = osp.dirname(osp.abspath(index))
    models: Dict[str, ModelInfo] = {}
    taken = set()
    for metafile in _read_yaml(index).get('Import', []):
        meta_path = osp.join(root, metafile)
        for entry in _read_yaml(meta_path).get('Models', []):
            name = entry['Name']
            aliases = entry.get('Alias') or []
            aliases = [aliases] if isinstance(aliases, str) else list(aliases)
            for known in [name] + aliases:
                if known in taken:
                    raise ValueError(f'{meta_path}: model name {known} is '
                                     'listed twice in the metafiles.')
                taken.add(known)
            config = osp.join(root, entry['Config'])
            if not osp.isfile(config):
                raise FileNotFoundError(
                    f'{meta_path}: the config {entry["Config"]} of {name} '
                    'does not exist.')
            models[name] = ModelInfo(
                name=name,
                config=config,
                weights=entry.get('Weights'),
                collection=entry.get('In Collection'),
                results=entry.get('Results') or [],
                aliases=aliases)
    return models


def _names_by_alias(models: Dict[str, ModelInfo]) -> Dict[str, str]:
    """Alias -> name of the model it stands for."""
    return {a: info.name for info in models.values() for a in info.aliases}


def list_models(pattern: Optional[str] = None,
                exclude_patterns: Optional[List[str]] = None) -> List[str]:
    """Names of the listed models, sorted, as ``mmpretrain.list_models``.

    Args:
        pattern: A wildcard pattern (``fnmatch``, case-insensitive;
            ``'*mask-ratio*'``); a pattern without ``*`` matches names that
            contain it. A model matches when its name or an alias does.
        exclude_patterns: Patterns of names (or aliases) to leave out.

    Returns:
        list[str]: Matching model names (``Name``, the config file's name).
    """
    models = load_model_index()

    def matches(name: str, text: str) -> bool:
        text = text.lower() if '*' in text else f'*{text.lower()}*'
        return any(
            fnmatch.fnmatch(n.lower(), text)
            for n in [name] + models[name].aliases)

    names = sorted(models)
    if pattern:
        names = [n for n in names if matches(n, pattern)]
    for excluded in exclude_patterns or []:
        names = [n for n in names if not matches(n, excluded)]
    return names


def model_info(name: str) -> ModelInfo:
    """The metafile entry of ``name`` (a ``Name`` or an ``Alias``).

    Raises:
        ValueError: An unknown name; the message lists the known ones.
    """
    models = load_model_index()
    name = _names_by_alias(models).get(name, name)
    if name not in models:
        close = [n for n in sorted(models) if name.lower() in n.lower()]
        raise ValueError(
            f'Unknown model {name!r}. ' +
            (f'Did you mean one of {close}? ' if close else '') +
            f'Known models ({len(models)}): {", ".join(sorted(models))} '
            '(mvlt.apis.list_models()).')
    return models[name]


def model_config(config):
    """The config file of a model name (or alias) of the metafile; anything
    else (a path, a ``Config``) unchanged."""
    if isinstance(config, str) and not osp.exists(config):
        models = load_model_index()
        name = _names_by_alias(models).get(config, config)
        if name in models:
            return models[name].config
    return config


def config_metainfo(cfg: Config) -> Optional[dict]:
    """Metainfo the config states for its test data set (class names), or
    None when it states none."""
    loader = cfg.get('test_dataloader') or {}
    meta = (loader.get('dataset') or {}).get('metainfo')
    return dict(meta) if meta else None


def build_model_with_weights(cfg: Config,
                             weights: Optional[str] = None) -> tuple:
    """Build ``cfg.model`` and load ``weights`` with every check.

    The one way a model is made for inference (``get_model``,
    ``MVLTInferencer``): no pre-training initialisation when weights
    follow, and the checkpoint read once and checked by
    :func:`mvlt.utils.checkpoint_loading.load_model_checkpoint` (shapes,
    vocabulary, the label map of the config's test data set), as the
    Runner checks it.

    Returns:
        tuple: ``(model, checkpoint)``: the model (on the CPU, train mode
        as built) and the read checkpoint dict (None without weights).

    Raises:
        FileNotFoundError / RuntimeError / ValueError / KeyError: as
            :func:`~mvlt.utils.checkpoint_loading.load_model_checkpoint`.
    """
    from mvlt.registry import MODELS
    from mvlt.utils.checkpoint_loading import load_model_checkpoint
    model_cfg = copy.deepcopy(cfg.model)
    if weights and 'backbone' in model_cfg:
        # Whole-model weights follow; no ImageNet initialisation first.
        model_cfg.backbone.pop('init_cfg', None)
    model = MODELS.build(model_cfg)
    loaded = None
    if weights:
        loaded = load_model_checkpoint(
            model, weights, dataset_meta=config_metainfo(cfg))
    return model, loaded


def get_model(model: Union[str, Config],
              pretrained: Union[bool, str, None] = None,
              device: str = 'cpu',
              **kwargs):
    """Build a model by name or config, as ``mmpretrain.get_model``.

    Args:
        model: A name from :func:`list_models` (or a former name, the
            metafile's ``Alias``), a config file or a ``Config``.
        pretrained: None / False: the weights as initialised; a checkpoint
            path: those weights; True: the metafile's ``Weights`` (a local
            path; no model of this project has released weights yet).
        device: Where the model goes.
        **kwargs: Overrides merged into the config's ``model`` (e.g.
            ``data_preprocessor=dict(tokenizer=dict(vocab_file=...))``).

    Returns:
        mvlt.models.MVLT: The model in eval mode; ``model.cfg`` is its
        config.

    Raises:
        ValueError: An unknown name (the message lists the known ones), or
            ``pretrained=True`` for a model without released weights.
        FileNotFoundError: A missing checkpoint.
    """
    from mvlt.utils import register_all_modules
    from mvlt.utils.config import load_config
    register_all_modules()
    weights = None
    if isinstance(model, Config):
        cfg = copy.deepcopy(model)
    elif osp.isfile(model):
        cfg = load_config(model)
    else:
        info = model_info(model)
        cfg = load_config(info.config)
        weights = info.weights
    if kwargs:
        cfg.merge_from_dict({'model': kwargs})
    if pretrained is True:
        if not weights:
            raise ValueError(
                f'{model} has no released weights in the metafile; pass '
                'pretrained=PATH of a checkpoint you trained.')
        pretrained = weights
    if pretrained and not osp.isfile(pretrained):
        raise FileNotFoundError(
            f'Checkpoint {pretrained} does not exist (nothing is '
            'downloaded: pass a local file).')
    built, _ = build_model_with_weights(cfg, pretrained or None)
    built.cfg = cfg
    return built.to(device).eval()
