"""CheckpointShapeCheckHook: refuses misfitting tensors, names the file."""
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from mvlt.engine.hooks import CheckpointShapeCheckHook


class _Runner:
    """What the hook reads: the model, the config and the work dir."""

    def __init__(self, cfg: dict, work_dir: str = '.') -> None:
        self.model = nn.Linear(4, 3)
        self.cfg = Config(cfg)
        self.work_dir = work_dir


def _checkpoint(weight_shape, prefix='module.'):
    return dict(
        meta=dict(epoch=1),
        state_dict={
            f'{prefix}weight': torch.zeros(weight_shape),
            f'{prefix}bias': torch.zeros(3)
        })


def test_fitting_checkpoint_passes_with_ddp_prefixes():
    hook = CheckpointShapeCheckHook()
    hook.after_load_checkpoint(_Runner({}), _checkpoint((3, 4)))
    hook.after_load_checkpoint(_Runner({}), _checkpoint((3, 4), prefix=''))
    # Keys the model lacks are MMEngine's business (strict / unexpected).
    hook.after_load_checkpoint(
        _Runner({}), dict(state_dict={'other.weight': torch.zeros(9)}))


def test_misfit_names_load_from_and_both_shapes():
    hook = CheckpointShapeCheckHook()
    runner = _Runner(dict(load_from='/ckpts/epoch_3.pth'))
    with pytest.raises(
            ValueError,
            match=r'Checkpoint /ckpts/epoch_3.pth does not fit the model: '
            r'weight: checkpoint \[5, 4\] vs model \[3, 4\]'):
        hook.after_load_checkpoint(runner, _checkpoint((5, 4)))
    # Without the module. prefix stripped, nothing would be compared.
    with pytest.raises(ValueError, match='does not fit'):
        hook.after_load_checkpoint(runner, _checkpoint((5, 4), prefix=''))
    keep = CheckpointShapeCheckHook(revise_keys=[])
    keep.after_load_checkpoint(runner, _checkpoint((5, 4)))


def test_auto_resume_names_the_last_checkpoint(tmp_path):
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    runner = _Runner(dict(resume=True, load_from=None), str(tmp_path))
    with pytest.raises(
            ValueError,
            match=f'Checkpoint {tmp_path}/iter_6.pth does not fit'):
        CheckpointShapeCheckHook().after_load_checkpoint(
            runner, _checkpoint((5, 4)))
    # No config to tell: the message still says what is wrong.
    with pytest.raises(
            ValueError,
            match=r'The checkpoint being loaded does not fit the model'):
        CheckpointShapeCheckHook().after_load_checkpoint(
            _Runner({}), _checkpoint((5, 4)))
