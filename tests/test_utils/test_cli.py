"""The command-line arguments that the tools share (mvlt/utils/cli.py)."""
import os

import pytest

from conftest import NANO_CONFIG
from mvlt.utils.cli import (add_launcher_arguments, config_parser,
                            load_args_config, parse_launcher_args)


@pytest.fixture
def no_local_rank(monkeypatch):
    """LOCAL_RANK unset for the test, restored afterwards (setenv first so
    that monkeypatch also removes the one the test's parsing sets)."""
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.delenv('LOCAL_RANK')


def test_config_parser_reads_config_and_cfg_options():
    parser = config_parser('a tool')
    parser.add_argument('checkpoint')
    args = parser.parse_args(
        ['cfg.py', 'model.pth', '--cfg-options', 'a.b=1', 'c=[2,3]', 'd=None'])
    assert (args.config, args.checkpoint) == ('cfg.py', 'model.pth')
    assert args.cfg_options == {'a.b': 1, 'c': [2, 3], 'd': None}
    assert parser.parse_args(['cfg.py', 'model.pth']).cfg_options is None


def test_local_rank_becomes_the_environment_variable(no_local_rank):
    parser = config_parser('a tool')
    add_launcher_arguments(parser)
    args = parse_launcher_args(parser, ['cfg.py', '--local_rank', '3'])
    assert (args.launcher, args.local_rank) == ('none', 3)
    assert os.environ['LOCAL_RANK'] == '3'
    # torchrun's LOCAL_RANK wins over the option.
    parse_launcher_args(parser, ['cfg.py', '--local-rank', '5'])
    assert os.environ['LOCAL_RANK'] == '3'
    with pytest.raises(SystemExit):
        parse_launcher_args(parser, ['cfg.py', '--launcher', 'ssh'])


def test_load_args_config_sets_launcher_and_work_dir(no_local_rank, tmp_path):
    parser = config_parser('a tool')
    parser.add_argument('--work-dir')
    add_launcher_arguments(parser)
    args = parse_launcher_args(parser, [
        NANO_CONFIG, '--launcher', 'pytorch', '--cfg-options',
        'train_dataloader.batch_size=3'
    ])
    cfg = load_args_config(args)
    assert cfg.launcher == 'pytorch'
    assert cfg.train_dataloader.batch_size == 3
    assert cfg.work_dir == './work_dirs/mvlt_nano_cpu_jsonl'
    work_dir = str(tmp_path)
    args = parse_launcher_args(parser, [NANO_CONFIG, '--work-dir', work_dir])
    assert load_args_config(args).work_dir == work_dir
    # A tool without these arguments gets the config alone.
    plain = config_parser('a tool').parse_args([NANO_CONFIG])
    cfg = load_args_config(plain)
    assert 'launcher' not in cfg
    assert cfg.get('work_dir') is None
