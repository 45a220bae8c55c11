"""Accuracy, macro-F1 (as scikit-learn computes it) and SumC."""
import pytest
import torch
from mmengine.structures import BaseDataElement
from sklearn.metrics import f1_score

from mvlt.evaluation import RecognitionMetric, accuracy, macro_f1


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
