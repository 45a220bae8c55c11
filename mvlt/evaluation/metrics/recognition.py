"""Category / sub-category recognition metrics (M-CR and S-CR): accuracy A,
macro-F1 and SumC = (A + macro-F) x 100 (paper section 3.3)."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mvlt.registry import METRICS

#: Task label -> (prediction field, ground-truth field) of a data sample.
DEFAULT_TASKS = OrderedDict([
    ('M-CR', ('category_scores', 'category_label')),
    ('S-CR', ('subcategory_scores', 'subcategory_label')),
])


def macro_f1(pred: Sequence[int], target: Sequence[int]) -> float:
    """Macro-averaged F1 in [0, 1] over the classes that occur.

    Per-class F1 comes from mmpretrain's ``SingleLabelMetric.calculate``; its
    own macro average divides by *every* class id up to ``num_classes``,
    counting classes that appear neither in the labels nor in the
    predictions as F1 = 0. Here the mean runs over the classes present in
    ``target`` or ``pred``, which is scikit-learn's ``f1_score(...,
    average='macro')`` (a class predicted but never true, or true but never
    predicted, counts as 0).
    """
    pred = torch.as_tensor(np.asarray(pred), dtype=torch.long)
    target = torch.as_tensor(np.asarray(target), dtype=torch.long)
    if pred.numel() == 0:
        raise ValueError('macro_f1: no labelled sample.')
    # mmpretrain's metric module imports no model code, so it works with the
    # installed transformers / numpy (``mmpretrain.models`` does not). It is
    # imported here so that mvlt imports without mmpretrain.
    from mmpretrain.evaluation import SingleLabelMetric
    num_classes = int(max(pred.max(), target.max())) + 1
    _, _, f1, _ = SingleLabelMetric.calculate(
        pred, target, average=None, num_classes=num_classes)
    present = torch.zeros(num_classes, dtype=torch.bool)
    present[pred] = True
    present[target] = True
    return float(f1[present].mean() / 100.0)


def accuracy(pred: Sequence[int], target: Sequence[int]) -> float:
    """Top-1 accuracy in [0, 1]."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.size == 0:
        raise ValueError('accuracy: no labelled sample.')
    return float((pred == target).mean())


@METRICS.register_module()
class RecognitionMetric(BaseMetric):
    """Accuracy, macro-F1 and SumC of each recognition task.

    Reported per task (``M-CR``: category, ``S-CR``: sub-category) as
    ``recognition/<split>/<task>/A`` (accuracy in percent),
    ``.../macro-F`` (macro-F1 in [0, 1], as the paper prints it) and
    ``.../SumC`` = (A + macro-F) x 100 with A as a fraction. Samples whose
    label is ``ignore_index`` (unknown class in the test split) are left out
    and counted in ``.../ignored`` (reported when there are any).

    Expects per sample the class scores (``category_scores`` (C,) ...) that
    ``MVLT.predict`` writes with ``predict_tasks=('category',)`` and the
    integer labels the data set packs; ``sample_idx`` (meta) removes the
    duplicates of distributed padding.

    Args:
        tasks (dict, optional): Task label -> (score field, label field);
            default M-CR and S-CR.
        split (str): Split label of the reported names.
        ignore_index (int): Label value excluded from the metrics.
        collect_device (str): 'cpu' or 'gpu'.
        prefix (str, optional): Name prefix (default ``recognition``).
    """

    default_prefix = 'recognition'

    def __init__(self,
                 tasks: Optional[Dict[str, Tuple[str, str]]] = None,
                 split: str = 'test',
                 ignore_index: int = -1,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.tasks = OrderedDict(tasks or DEFAULT_TASKS)
        self.split = split
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Keep (sample_idx, predicted class, label) per task."""
        for sample in data_samples:
            result = dict(sample_idx=sample.get('sample_idx'))
            for task, (score_key, label_key) in self.tasks.items():
                scores, label = sample.get(score_key), sample.get(label_key)
                if scores is None or label is None:
                    raise KeyError(
                        f'RecognitionMetric ({task}) needs {score_key!r} and '
                        f'{label_key!r} per sample: test with '
                        "model.predict_tasks=('category',) on a data set "
                        'that carries category labels.')
                result[task] = (int(torch.as_tensor(scores).argmax()),
                                int(label))
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """A, macro-F and SumC per task."""
        unique = OrderedDict()
        for result in results:
            key = result['sample_idx']
            unique[len(unique) if key is None else key] = result
        metrics: Dict[str, float] = OrderedDict()
        for task in self.tasks:
            pairs = [r[task] for r in unique.values()]
            kept = [(p, t) for p, t in pairs if t != self.ignore_index]
            name = f'{self.split}/{task}'
            if not kept:
                raise ValueError(
                    f'RecognitionMetric ({task}): every test sample has the '
                    f'ignored label {self.ignore_index}; nothing to score.')
            pred, target = zip(*kept)
            acc, f1 = accuracy(pred, target), macro_f1(pred, target)
            metrics[f'{name}/A'] = acc * 100.0
            metrics[f'{name}/macro-F'] = f1
            metrics[f'{name}/SumC'] = (acc + f1) * 100.0
            if len(kept) < len(pairs):
                metrics[f'{name}/ignored'] = float(len(pairs) - len(kept))
        return metrics
