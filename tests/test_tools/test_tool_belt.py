"""print_config, get_flops, analyze_logs and browse_dataset on small inputs."""
import copy
import glob
import os.path as osp

import cv2
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.runner import Runner
from torch.utils.flop_counter import FlopCounterMode

from conftest import (NANO_CONFIG, REPO, cfg_options_args, load_tool,
                      nano_cfg_options)
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules

PRETRAIN = osp.join(REPO, 'configs', 'mvlt', 'pretrain_fashiongen.py')


def test_print_config(tmp_path, capsys):
    tool = load_tool('misc/print_config.py')
    saved = tmp_path / 'merged.py'
    tool.main([
        PRETRAIN, '--cfg-options', 'train_dataloader.batch_size=4', '--save',
        str(saved)
    ])
    out = capsys.readouterr().out
    assert "type='PVTPretrained'" in out and 'batch_size=4' in out
    merged = Config.fromfile(str(saved))
    assert merged.train_dataloader.batch_size == 4
    assert merged.model.backbone.arch == 'tiny'


def test_get_flops(nano_data, capsys):
    tool = load_tool('analysis_tools/get_flops.py')
    register_all_modules()
    cfg = Config.fromfile(NANO_CONFIG)
    cfg.merge_from_dict(nano_cfg_options(nano_data))
    model = MODELS.build(cfg.model).eval()
    size = model.backbone.img_size
    results = tool.measure(model, torch.zeros(1, 3, *size),
                           torch.full((1, model.backbone.text_len), 5),
                           ['mir', 'itm', 'mlm'])
    assert all(r['flops'] > 0 for r in results.values())
    assert results['total']['flops'] == sum(r['flops']
                                            for k, r in results.items()
                                            if k != 'total')
    # Parameters: each tensor once (the MLM decoder is tied to the word
    # embeddings), the data preprocessor has none.
    assert results['total']['params'] == sum(p.numel()
                                             for p in model.parameters())
    # The counter's convention: a multiply-add is 2 FLOPs.
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    counter = FlopCounterMode(display=False)
    with counter:
        conv(torch.zeros(1, 2, 5, 5))
    assert counter.get_total_flops() == 2 * 5 * 5 * 4 * 2 * 9
    tool.main([NANO_CONFIG] + cfg_options_args(nano_cfg_options(nano_data)))
    out = capsys.readouterr().out
    assert 'heads.mir' in out and 'total' in out


def test_get_flops_of_the_paper_model(capsys):
    tool = load_tool('analysis_tools/get_flops.py')
    tool.main([PRETRAIN, '--placeholder-vocab', '--tasks', 'itm'])
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith('backbone'))
    gflops, gmacs, params = (float(v) for v in line.split()[1:])
    # PVT-Tiny alone is 1.9 GFLOPs (MACs) at 224 px; text tokens and 256 px
    # add to it; 30522 x 768 word embeddings dominate the parameters.
    assert 1.9 < gmacs < 6 and gflops == pytest.approx(2 * gmacs, rel=1e-3)
    assert 35 < params < 45


@pytest.fixture(scope='module')
def trained_nano(nano_data, tmp_path_factory):
    """A 2-epoch nano run; returns its work dir."""
    register_all_modules()
    work_dir = str(tmp_path_factory.mktemp('nano_run'))
    cfg = Config.fromfile(NANO_CONFIG)
    cfg.merge_from_dict(nano_cfg_options(nano_data, work_dir))
    Runner.from_cfg(copy.deepcopy(cfg)).train()
    return work_dir


@pytest.mark.slow
def test_analyze_logs(trained_nano, tmp_path, capsys):
    tool = load_tool('analysis_tools/analyze_logs.py')
    logs = glob.glob(osp.join(trained_nano, '*', 'vis_data', 'scalars.json'))
    assert len(logs) == 1
    out = tmp_path / 'curves.png'
    tool.main([
        'plot_curve', logs[0], '--keys', 'loss', 'loss_mir', '--out',
        str(out)
    ])
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 100
    tool.main(['cal_train_time', logs[0]])
    assert 's/iter' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='none_such'):
        tool.main([
            'plot_curve', logs[0], '--keys', 'none_such', '--out',
            str(tmp_path / 'x.png')
        ])


def test_browse_dataset(nano_data, tmp_path, capsys):
    tool = load_tool('visualization/browse_dataset.py')
    out_dir = tmp_path / 'browse'
    paths = tool.main(
        [NANO_CONFIG, '--num', '4', '--output-dir',
         str(out_dir)] + cfg_options_args(nano_cfg_options(nano_data)))
    # 4 images give 4 matched pairs plus the ITM negatives.
    assert len(paths) >= 4
    for path in paths:
        assert cv2.imread(path) is not None
    printed = capsys.readouterr().out
    # Masked caption tokens are shown with their original word.
    assert '<' in printed and '[CLS]' in printed
    paths = tool.main([
        NANO_CONFIG, '--phase', 'test', '--num', '2', '--output-dir',
        str(tmp_path / 'test')
    ] + cfg_options_args(nano_cfg_options(nano_data)))
    assert len(paths) == 2
