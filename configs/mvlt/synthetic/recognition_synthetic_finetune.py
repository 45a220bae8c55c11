# Category (4 garment types) and sub-category (8 type + length groups)
# recognition on the synthetic Fashion-Gen: a short end-to-end fine-tuning of
# the demo model with cross-entropy on both label sets.
#   python tools/train.py \
#       configs/mvlt/synthetic/recognition_synthetic_finetune.py \
#       --cfg-options load_from=DEMO_CKPT
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/schedules/adamw_cosine_150e.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    data_preprocessor=dict(
        tokenizer={{_base_.tokenizer}},
        mask_generator=None,
        mlm_mask_ratio=0.0,
        itm_neg_ratio=0.0),
    backbone=dict(
        img_size={{_base_.img_size}},
        text_len={{_base_.text_len}},
        init_cfg=None),
    heads=dict(
        mir=None,
        itm=None,
        mlm=None,
        category=dict(
            type='CategoryHead',
            num_categories=4,
            num_subcategories=8,
            in_channels=256,
            hidden_channels=128)),
    train_objectives=('category', ),
    predict_tasks=('category', ))

load_from = 'work_dirs/demo/pretrain.pth'

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=100)
auto_scale_lr = dict(base_batch_size=64, enable=False)
default_hooks = dict(logger=dict(interval=10))

val_dataloader = None
val_cfg = None
val_evaluator = None
test_cfg = dict(type='MVLTTestLoop')
test_evaluator = dict(type='RecognitionMetric', split='validation')
