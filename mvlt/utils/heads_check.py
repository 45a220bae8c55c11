"""Checking that a checkpoint holds the heads a task needs."""
from typing import Mapping, Sequence, Union


def checkpoint_state_dict(checkpoint: Union[str, Mapping]) -> Mapping:
    """The model state dict of a checkpoint file or loaded checkpoint."""
    if isinstance(checkpoint, str):
        from .checkpoint import load_checkpoint_file
        checkpoint = load_checkpoint_file(checkpoint, map_location='cpu')
    if isinstance(checkpoint, Mapping) and 'state_dict' in checkpoint:
        checkpoint = checkpoint['state_dict']
    if not isinstance(checkpoint, Mapping):
        raise TypeError('A checkpoint must hold a state dict, got '
                        f'{type(checkpoint).__name__}.')
    return checkpoint


def check_checkpoint_heads(checkpoint: Union[str, Mapping],
                           head_names: Sequence[str],
                           source: str = '') -> None:
    """Raise a clear error when ``checkpoint`` lacks a needed head.

    MMEngine loads checkpoints non-strictly, so a test with a checkpoint that
    has no weights for a head would silently score with a randomly
    initialised one; this check turns that into an error.

    Args:
        checkpoint (str | Mapping): Path or loaded checkpoint / state dict.
        head_names (Sequence[str]): Heads the task reads (``model.heads``
            keys, e.g. ``('itm',)``).
        source (str): Name of the checkpoint for the message (default: the
            path when one is given).

    Raises:
        KeyError: Some heads (or the encoder) have no weights.
    """
    if isinstance(checkpoint, str):
        source = source or checkpoint
    keys = [
        k[len('module.'):] if k.startswith('module.') else k
        for k in checkpoint_state_dict(checkpoint)
    ]
    if not any(k.startswith('backbone.') for k in keys):
        raise KeyError(f'Checkpoint {source} holds no backbone.* weights; it '
                       'is not an MVLT model checkpoint.')
    present = sorted({k.split('.')[1] for k in keys if k.startswith('heads.')})
    missing = [h for h in head_names if h not in present]
    if missing:
        # Which config trains a head is the configs' business, not this
        # check's: name the config key that builds it.
        wanted = ', '.join(f'model.heads.{h}' for h in missing)
        raise KeyError(
            f'Checkpoint {source} has no weights for the head(s) {missing} '
            f'that this task needs (it holds heads {present}). Use a '
            f'checkpoint saved by a run whose config builds {wanted} '
            '(pre-training or fine-tuning that trains it), or train one '
            'with such a config from this checkpoint (load_from).')
