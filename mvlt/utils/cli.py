"""Command-line arguments that the tools share (argparse).

Every tool that reads a config takes it as its first positional argument
with ``--cfg-options`` and reads it with :func:`load_args_config`; the
tools that run distributed (``tools/train.py``, ``tools/test.py``) also
take ``--launcher`` and ``--local_rank``.
"""
import argparse
import os
from typing import List, Optional

from mmengine.config import Config, DictAction

from .config import load_config, set_work_dir
from .setup_env import register_all_modules

#: Job launchers of MMEngine's ``init_dist`` (``none``: one process).
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
CFG_OPTIONS_HELP = ('override config settings, key=value (e.g. '
                    'train_dataloader.batch_size=8)')


def config_parser(description: str,
                  config_help: str = 'config file path',
                  **kwargs) -> argparse.ArgumentParser:
    """A parser whose first positional argument is ``config``, with
    ``--cfg-options`` (:func:`add_cfg_options`).

    Args:
        description (str): The tool's ``--help`` description.
        config_help (str): Help text of ``config``.
        **kwargs: More ``argparse.ArgumentParser`` arguments (for example
            ``formatter_class``).
    """
    parser = argparse.ArgumentParser(description=description, **kwargs)
    parser.add_argument('config', help=config_help)
    add_cfg_options(parser)
    return parser


def model_parser(description: str,
                 config_help: str = 'model config',
                 device: bool = True,
                 **kwargs) -> argparse.ArgumentParser:
    """The parser of a tool that runs a trained model: ``config``,
    ``--cfg-options`` (:func:`config_parser`), then the positional
    ``checkpoint`` and, unless ``device`` is False, ``--device`` (default
    ``cpu``).

    Args:
        description (str): The tool's ``--help`` description.
        config_help (str): Help text of ``config``.
        device (bool): Whether the tool takes ``--device``.
        **kwargs: More ``argparse.ArgumentParser`` arguments.
    """
    parser = config_parser(description, config_help, **kwargs)
    parser.add_argument('checkpoint', help='trained weights')
    if device:
        parser.add_argument(
            '--device', default='cpu', help="torch device, e.g. 'cuda:0'")
    return parser


def add_cfg_options(parser: argparse.ArgumentParser,
                    help: str = CFG_OPTIONS_HELP) -> None:
    """Add ``--cfg-options KEY=VALUE ...``, parsed by MMEngine's
    ``DictAction`` into the dict that
    :func:`mvlt.utils.config.load_config` merges into the config."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help=help)


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--launcher`` (:data:`LAUNCHERS`) and ``--local_rank``
    (``--local-rank``), which ``torch.distributed.launch`` passes; parse
    with :func:`parse_launcher_args`."""
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launcher_args(parser: argparse.ArgumentParser,
                        argv: Optional[List[str]] = None
                        ) -> argparse.Namespace:
    """Parse the command line of a tool with :func:`add_launcher_arguments`.

    The ``--local_rank`` of ``torch.distributed.launch`` becomes the
    ``LOCAL_RANK`` environment variable that MMEngine's ``init_dist`` reads,
    unless the launcher (torchrun) has set it already.
    """
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_args_config(args: argparse.Namespace) -> Config:
    """The config a tool's command line names, ready to build from.

    Registers mvlt's modules (:func:`register_all_modules`), then reads
    ``args.config`` with ``args.cfg_options`` applied
    (:func:`mvlt.utils.config.load_config`). Where the command line has
    them, ``--launcher`` becomes ``cfg.launcher`` and ``--work-dir`` the work
    dir (:func:`mvlt.utils.config.set_work_dir`).

    Raises:
        FileNotFoundError: The config does not exist.
        ImportError: A module of its ``custom_imports`` cannot be imported.
    """
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    if 'launcher' in args:
        cfg.launcher = args.launcher
    if 'work_dir' in args:
        set_work_dir(cfg, args.config, args.work_dir)
    return cfg
