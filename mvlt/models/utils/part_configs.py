"""Settings a part's config leaves to the model: ``None`` there means
"take it from where it is stated once" (the tokenizer, the data
preprocessor, the backbone)."""
import torch.nn as nn


def _vocab_size(cfg: dict, preprocessor: nn.Module) -> dict:
    """``vocab_size=None`` means the tokenizer's size."""
    if 'vocab_size' in cfg and cfg['vocab_size'] is None:
        vocab_size = getattr(preprocessor, 'vocab_size', None)
        if vocab_size is None:
            raise ValueError(
                f"{cfg.get('type')}: vocab_size=None needs a data "
                'preprocessor with a tokenizer to take it from.')
        cfg = dict(cfg, vocab_size=vocab_size)
    return cfg


def backbone_config(cfg: dict, preprocessor: nn.Module) -> dict:
    """The backbone config with the preprocessor's settings filled in.

    ``vocab_size=None`` takes the tokenizer's size; ``img_size=None`` and
    ``text_len=None`` take the data preprocessor's (where the model's input
    size and caption length are stated once).

    Raises:
        ValueError: A setting to take is missing (the message says what to
            set).
    """
    cfg = _vocab_size(dict(cfg), preprocessor)
    for key in ('img_size', 'text_len'):
        if key in cfg and cfg[key] is None:
            value = getattr(preprocessor, key, None)
            if value is None:
                raise ValueError(f'model.backbone.{key}=None takes the data '
                                 f"preprocessor's {key}, but it has none; set "
                                 f'model.data_preprocessor.{key}.')
            cfg[key] = value
    return cfg


def check_vocabulary(backbone: nn.Module, preprocessor: nn.Module) -> None:
    """The backbone's word-piece table fits the tokenizer.

    Raises:
        ValueError: The sizes differ (the message says what to set).
    """
    vocab_size = getattr(preprocessor, 'vocab_size', None)
    if vocab_size is not None and vocab_size != backbone.vocab_size:
        raise ValueError(
            f'The tokenizer vocabulary has {vocab_size} entries but '
            f'model.backbone.vocab_size is {backbone.vocab_size} (and the '
            f'MLM head must match it): set vocab_size to {vocab_size} in '
            'the config or use the vocabulary the model was trained with.')


def head_config(cfg: dict, preprocessor: nn.Module,
                backbone: nn.Module) -> dict:
    """A head config with ``vocab_size=None`` (the tokenizer's) and
    ``in_channels=None`` (the width of the last stage, T^4) filled in."""
    cfg = _vocab_size(dict(cfg), preprocessor)
    if 'in_channels' in cfg and cfg['in_channels'] is None:
        cfg['in_channels'] = backbone.embed_dims[-1]
    return cfg
