"""Accuracy, macro-F1 (as scikit-learn computes it) and SumC, and the
zero-shot recognition config that reports them."""
import json
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import BaseDataElement
from sklearn.metrics import f1_score

from conftest import REPO, finish_tool, save_without_heads, start_tool
from mvlt.evaluation import RecognitionMetric, accuracy, macro_f1
from mvlt.registry import MODELS
from mvlt.utils import register_all_modules


def test_macro_f1_of_a_known_confusion():
    # Classes 0..3; class 3 is predicted once but never true.
    target = [0, 0, 1, 1, 2, 2, 2, 0]
    pred = [0, 1, 1, 1, 2, 3, 2, 0]
    # Per class: F1(0) = 2*1*(2/3)/(1+2/3) = 0.8, F1(1) = 2*(2/3)*1/(5/3)
    # = 0.8, F1(2) = 2*1*(2/3)/(5/3) = 0.8, F1(3) = 0 -> mean 0.6.
    assert macro_f1(pred, target) == pytest.approx(0.6)
    assert macro_f1(pred, target) == pytest.approx(
        f1_score(target, pred, average='macro'))
    assert accuracy(pred, target) == pytest.approx(6 / 8)


def test_absent_class_ids_do_not_count():
    # Class 1 appears nowhere: scikit-learn ignores it, so must we.
    target, pred = [0, 2, 2, 3], [0, 2, 3, 3]
    assert macro_f1(pred, target) == pytest.approx(
        f1_score(target, pred, average='macro'))


def _sample(idx, cat_pred, cat, sub_pred, sub, num_cat=3, num_sub=5):
    sample = BaseDataElement(metainfo=dict(sample_idx=idx))
    sample.category_scores = torch.nn.functional.one_hot(
        torch.tensor(cat_pred), num_cat).float()
    sample.subcategory_scores = torch.nn.functional.one_hot(
        torch.tensor(sub_pred), num_sub).float()
    sample.category_label = cat
    sample.subcategory_label = sub
    return sample


def test_metric_reports_a_macro_f_and_sumc():
    metric = RecognitionMetric(split='val')
    samples = [
        _sample(0, 0, 0, 1, 1),
        _sample(1, 1, 1, 2, 3),
        _sample(2, 2, 1, 4, 4),
        _sample(3, 2, 2, 0, -1),  # unknown sub-category: ignored
        _sample(3, 2, 2, 0, -1),  # distributed padding duplicate
    ]
    metric.process(None, samples)
    metrics = metric.evaluate(4)
    cat_pred, cat = [0, 1, 2, 2], [0, 1, 1, 2]
    sub_pred, sub = [1, 2, 4], [1, 3, 4]
    mcr, scr = 'recognition/val/M-CR/', 'recognition/val/S-CR/'
    assert metrics[mcr + 'A'] == pytest.approx(75.0)
    f_cat = f1_score(cat, cat_pred, average='macro')
    assert metrics[mcr + 'macro-F'] == pytest.approx(f_cat)
    assert metrics[mcr + 'SumC'] == pytest.approx((0.75 + f_cat) * 100)
    assert metrics[scr + 'A'] == pytest.approx(200 / 3)
    assert metrics[scr + 'macro-F'] == pytest.approx(
        f1_score(sub, sub_pred, average='macro'))
    assert metrics[scr + 'ignored'] == 1.0


def test_metric_names_missing_fields():
    metric = RecognitionMetric()
    with pytest.raises(KeyError, match="predict_tasks=\\('category',\\)"):
        metric.process(None, [BaseDataElement(category_label=1)])


@pytest.mark.slow
def test_zero_shot_config_reports_recognition(synthetic_fashiongen, tmp_path):
    """The zero-shot task config (ITC similarity to prompt captions, no
    fine-tuning) reports M-CR / S-CR accuracy, macro-F1 and SumC through
    tools/test.py, with the class ids the config fixes; a checkpoint without
    ITC weights is refused."""
    register_all_modules()
    data = synthetic_fashiongen
    config = osp.join(REPO, 'configs', 'mvlt', 'synthetic',
                      'recognition_synthetic_zeroshot.py')
    options = {
        'model.data_preprocessor.tokenizer.vocab_file': data['vocab'],
        'test_dataloader.dataset.data_root': data['root'],
        'test_dataloader.dataset.ann_file': osp.basename(data['validation']),
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'test_dataloader.batch_size': 8,
    }
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    state = model.state_dict()
    checkpoint = str(tmp_path / 'demo.pth')
    torch.save(dict(state_dict=state, meta={}), checkpoint)

    without_itc = save_without_heads(state, str(tmp_path / 'no_itc.pth'),
                                     'itc')

    def start(ckpt, name):
        command = [
            sys.executable, 'tools/test.py', config, ckpt, '--work-dir',
            str(tmp_path / name), '--cfg-options'
        ] + [f'{k}={v}' for k, v in options.items()]
        return start_tool(command, dict(os.environ, OMP_NUM_THREADS='1'))

    # Both at once, one thread each: the refused run ends at the check.
    zeroshot = start(checkpoint, 'zeroshot')
    no_itc = start(without_itc, 'no_itc')
    work_dir = str(tmp_path / 'zeroshot')
    assert '| M-CR (validation)' in finish_tool(zeroshot).stdout
    with open(osp.join(work_dir, 'test_metrics.json')) as f:
        metrics = json.load(f)['metrics']
    for task in ('M-CR', 'S-CR'):
        accuracy_pc = metrics[f'recognition/validation/{task}/A']
        assert 0 <= accuracy_pc <= 100
        assert metrics[f'recognition/validation/{task}/SumC'] == \
            pytest.approx(accuracy_pc +
                          100 * metrics[f'recognition/validation/{task}/'
                                        'macro-F'])
    refused = finish_tool(no_itc, returncode=None)
    assert refused.returncode != 0
    assert "no weights for the head(s) ['itc']" in refused.stderr
