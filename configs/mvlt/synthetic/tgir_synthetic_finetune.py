# TGIR on the synthetic FashionIQ of drawn garments: the demo's small MVLT
# fine-tuned from the demo checkpoint for a few CPU minutes; the task of
# configs/mvlt/tgir_fashioniq_finetune.py (figures in docs/tgir.md).
#   python tools/misc/make_synthetic_fashioniq.py data/synthetic_fashioniq
#   python tools/train.py configs/mvlt/synthetic/tgir_synthetic_finetune.py \
#       --cfg-options load_from=work_dirs/demo/pretrain/iter_750.pth
#   python tools/test.py configs/mvlt/synthetic/tgir_synthetic_finetune.py \
#       work_dirs/tgir_synthetic_finetune/iter_400.pth
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/fashioniq.py',
    '../../_base_/schedules/adamw_cosine_750it.py',
    '../../_base_/tasks/tgir.py',
    '../../_base_/default_runtime.py',
]

data_root = 'data/synthetic_fashioniq/'

model = dict(
    # The writer puts the demo's vocabulary beside the data.
    data_preprocessor=dict(tokenizer=dict(vocab_file=data_root + 'vocab.txt')),
    heads=dict(
        _delete_=True,
        itc=_base_.itc_head,
        tgir=dict(_base_.tgir_head, embed_dim=_base_.itc_head.embed_dim)),
    train_objectives=('tgir', ),
    predict_tasks=('tgir', ))

load_from = 'work_dirs/demo/pretrain/iter_750.pth'

# Images are 64 px PNGs: the loader decodes in the main process.
test_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root))
train_dataloader = dict(test_dataloader, pin_memory=False)

max_iters = 400
warmup_iters = 50
optim_wrapper = dict(optimizer=dict(lr=5e-4, weight_decay=0.05))
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters),
    dict(
        _base_.param_scheduler[1],
        T_max=max_iters - warmup_iters,
        begin=warmup_iters,
        end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
