"""CachedTextConfig: MMEngine's config text, formatted once per content."""
import copy
import pickle

import mmengine.config.config as mmengine_config
from mmengine.config import Config

from mvlt.engine import CachedTextConfig, MVLTRunner


def _count_formatting(monkeypatch) -> list:
    """Calls of yapf's FormatCode from MMEngine's Config (one per
    ``pretty_text`` that formats)."""
    calls = []
    format_code = mmengine_config.FormatCode

    def counted(*args, **kwargs):
        calls.append(1)
        return format_code(*args, **kwargs)

    monkeypatch.setattr(mmengine_config, 'FormatCode', counted)
    return calls


def test_text_is_configs_and_made_once_per_content(nano_config, monkeypatch):
    expected = copy.deepcopy(nano_config).pretty_text
    cfg = CachedTextConfig.of(copy.deepcopy(nano_config))
    calls = _count_formatting(monkeypatch)
    assert cfg.pretty_text == expected
    assert cfg.pretty_text == expected and cfg.dump() == expected
    assert len(calls) == 1
    # A changed config is formatted again, and its text says so.
    cfg.train_cfg.max_epochs = 7
    assert 'max_epochs=7' in cfg.pretty_text
    assert len(calls) == 2
    plain = copy.deepcopy(nano_config)
    plain.train_cfg.max_epochs = 7
    assert cfg.pretty_text == plain.pretty_text
    # The cache is not a config key.
    assert '_pretty_text_cache' not in cfg and '_pretty_text_cache' not in \
        cfg.pretty_text


def test_copies_keep_the_class(nano_config):
    cfg = CachedTextConfig.of(nano_config)
    assert CachedTextConfig.of(cfg) is cfg
    assert cfg._cfg_dict is nano_config._cfg_dict  # shared, not copied
    for other in (copy.deepcopy(cfg), copy.copy(cfg),
                  pickle.loads(pickle.dumps(cfg))):
        assert type(other) is CachedTextConfig
        assert other.pretty_text == Config.pretty_text.fget(nano_config)


def test_runners_of_one_process_keep_their_own_instances(
        nano_config, tmp_path):
    """Two runners of one config built within one second (MMEngine's
    experiment names would be equal): each has its own logger, message hub
    and visualizer, and the config stays cached and unchanged."""
    runners = []
    for name in ('first', 'second'):
        cfg = copy.deepcopy(nano_config)
        cfg.work_dir = str(tmp_path / name)
        runners.append(MVLTRunner.from_cfg(cfg))
        assert 'experiment_name' not in cfg
    first, second = runners
    assert type(second.cfg) is CachedTextConfig
    assert second.cfg.pretty_text == Config.pretty_text.fget(second.cfg)
    assert first.experiment_name != second.experiment_name
    assert '_run' in second.experiment_name
    assert first.message_hub is not second.message_hub
    assert first.logger is not second.logger
    assert first.visualizer is not second.visualizer
    second.message_hub.update_info('nonfinite_steps', 5)
    assert first.message_hub.get_info('nonfinite_steps') is None
