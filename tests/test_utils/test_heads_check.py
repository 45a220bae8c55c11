"""check_checkpoint_heads: a clear error for a checkpoint without a head."""
import pytest
import torch

from mvlt.utils import check_checkpoint_heads

STATE = {
    'module.backbone.stages.0.pos_embed': torch.zeros(1),
    'module.heads.itm.fc.weight': torch.zeros(1),
    'heads.mlm.bias': torch.zeros(1),
}


def test_present_heads_pass():
    check_checkpoint_heads(dict(state_dict=STATE), ('itm', 'mlm'))


def test_missing_heads_name_their_config_keys():
    with pytest.raises(KeyError) as info:
        check_checkpoint_heads(
            STATE, ('itm', 'category', 'newhead'), source='ckpt.pth')
    message = str(info.value)
    assert "Checkpoint ckpt.pth has no weights for the head(s) " \
        "['category', 'newhead']" in message
    assert "it holds heads ['itm', 'mlm']" in message
    # Any head name, also one no table knows, gets its config key.
    assert 'model.heads.category, model.heads.newhead' in message


def test_not_an_mvlt_checkpoint():
    with pytest.raises(KeyError, match='holds no backbone'):
        check_checkpoint_heads({'heads.itm.fc.weight': torch.zeros(1)},
                               ('itm', ))
