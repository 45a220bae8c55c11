"""Helpers of the retrieval / evaluation tests (not a test module)."""
import copy
import os.path as osp

from mmengine.config import Config

from conftest import NANO_ITC, save_model_checkpoint  # noqa: F401
from mvlt.engine import build_runner


def nano_retrieval_config(nano_config: Config, checkpoint: str, work_dir: str,
                          **test_cfg) -> Config:
    """The nano config as a retrieval test (ITM + ITC heads)."""
    cfg = copy.deepcopy(nano_config)
    cfg.model.heads.itc = NANO_ITC
    cfg.model.predict_tasks = ('itm', )
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler'):
        cfg[key] = None
    cfg.test_cfg = dict(
        dict(
            type='RetrievalTestLoop',
            pair_batch_size=16,
            embed_batch_size=8,
            show_progress=False), **test_cfg)
    cfg.test_evaluator = dict(type='RetrievalMetric')
    cfg.load_from = checkpoint
    cfg.work_dir = work_dir
    return cfg


def run_test(cfg: Config) -> tuple:
    """``test()`` of the runner the tools build; returns (metrics, the
    loop's ranked query records)."""
    runner = build_runner(cfg)
    metrics = runner.test()
    return metrics, getattr(runner.test_loop, 'records', None)


def synthetic_options(data: dict,
                      protocol_file: str = None,
                      train: bool = False) -> dict:
    """--cfg-options pointing the synthetic configs at a generated set
    (the training loader too with ``train``)."""
    root, vocab = data['root'], data['vocab']
    train_file = osp.basename(data['train'])
    val_file = osp.basename(data['validation'])
    options = {'model.data_preprocessor.tokenizer.vocab_file': vocab}
    loaders = [('test_dataloader', val_file)]
    if train:
        loaders.append(('train_dataloader', train_file))
    for loader, ann in loaders:
        options.update({
            f'{loader}.dataset.data_root': root,
            f'{loader}.dataset.ann_file': ann,
            f'{loader}.num_workers': 0,
            f'{loader}.persistent_workers': False,
            f'{loader}.batch_size': 8,
        })
    options['test_dataloader.dataset.label_map_from'] = train_file
    if protocol_file:
        options['test_cfg.protocol_file'] = protocol_file
    return options
