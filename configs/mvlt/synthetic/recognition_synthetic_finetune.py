# Category (4 garment types) and sub-category (8 type + length groups)
# recognition on the synthetic Fashion-Gen: a short end-to-end fine-tuning of
# the demo model with cross-entropy on both label sets.
#   python tools/train.py \
#       configs/mvlt/synthetic/recognition_synthetic_finetune.py \
#       --cfg-options load_from=DEMO_CKPT
#   python tools/test.py \
#       configs/mvlt/synthetic/recognition_synthetic_finetune.py FINETUNED
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/schedules/adamw_cosine_150e.py',
    '../../_base_/tasks/recognition.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    heads=dict(
        _delete_=True,
        category=dict(
            _base_.category_head,
            num_categories=4,
            num_subcategories=8,
            hidden_channels=128)))

load_from = 'work_dirs/demo/pretrain.pth'

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=100)
auto_scale_lr = dict(base_batch_size=64, enable=False)
default_hooks = dict(logger=dict(interval=10))
# No validation during the short fine-tuning: test with tools/test.py.
val_dataloader = None
val_cfg = None
val_evaluator = None
