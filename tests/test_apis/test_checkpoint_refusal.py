"""A wrong or partial checkpoint is refused by the inferencer with the
message the Runner gives (one loader, one set of checks)."""
import copy

import pytest
import torch
from mmengine.runner import Runner

from conftest import (NANO_ITC, draw_product, save_model_checkpoint,
                      save_without_heads)
from mvlt.apis import MVLTInferencer, get_model
from mvlt.engine.loops.utils import check_model_heads
from mvlt.utils import register_all_modules

register_all_modules()


@pytest.fixture
def itc_config(nano_config, tmp_path):
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = NANO_ITC
    cfg.work_dir = str(tmp_path / 'work')
    path = str(tmp_path / 'nano_itc.py')
    cfg.dump(path)
    return cfg, path


def _runner_error(cfg, checkpoint: str, heads=()) -> BaseException:
    """What the Runner raises loading ``checkpoint`` (``load_from``) and, as
    the test loops do, checking the heads a task needs."""
    cfg = copy.deepcopy(cfg)
    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    with pytest.raises((KeyError, ValueError)) as err:
        runner.load_checkpoint(checkpoint)
        check_model_heads(runner, runner.model, heads)
    return err.value


def test_wrong_shapes_refused_with_the_runners_message(itc_config, tmp_path):
    cfg, config = itc_config
    wrong = copy.deepcopy(cfg.model)
    wrong.heads.itc = dict(NANO_ITC, embed_dim=16)
    checkpoint = save_model_checkpoint(wrong, str(tmp_path / 'wrong.pth'))
    expected = _runner_error(cfg, checkpoint)
    assert isinstance(expected, ValueError)
    assert 'heads.itc.' in str(expected) and checkpoint in str(expected)
    with pytest.raises(ValueError) as err:
        MVLTInferencer(config, checkpoint)
    assert str(err.value) == str(expected)
    # get_model loads through the same checks.
    with pytest.raises(ValueError) as err:
        get_model(config, pretrained=checkpoint)
    assert str(err.value) == str(expected)


def test_partial_checkpoint_refused_with_the_runners_message(
        itc_config, tmp_path):
    cfg, config = itc_config
    full = save_model_checkpoint(cfg.model, str(tmp_path / 'full.pth'))
    partial = save_without_heads(
        torch.load(full)['state_dict'], str(tmp_path / 'partial.pth'), 'itm')
    expected = _runner_error(cfg, partial, heads=('itm', ))
    assert isinstance(expected, KeyError)
    inferencer = MVLTInferencer(config, partial)
    with pytest.raises(KeyError) as err:
        inferencer.score([draw_product('red', 'circle', 0)],
                         ['a red circle on a white background'])
    assert str(err.value) == str(expected)
    assert "['itm']" in str(err.value)
