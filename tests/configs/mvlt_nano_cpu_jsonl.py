# A nano MVLT that trains on CPU in seconds: the demo model of
# configs/_base_/models/mvlt_synthetic-demo.py (64 px images, one block per
# stage, captions of 32 tokens, a vocabulary built from the data) at half its
# widths, on JSON-lines image-caption files. Used by the tests.
_base_ = [
    '../../configs/_base_/models/mvlt_synthetic-demo.py',
    '../../configs/_base_/datasets/image_text_jsonl.py',
    '../../configs/_base_/schedules/adamw_cosine_150e.py',
    '../../configs/_base_/tasks/mig.py',
    '../../configs/_base_/default_runtime.py',
]

data_root = 'data/nano/'

model = dict(
    data_preprocessor=dict(
        tokenizer=dict(vocab_file=data_root + 'vocab.txt'),
        foreground_crop=None),
    # Predicting with MIR masks the images first (masked image generation).
    predict_tasks=('mir', ),
    backbone=dict(
        arch=dict(embed_dims=(16, 32, 64, 128), sr_ratios=(4, 2, 1, 1))),
    heads=dict(
        mir=dict(decoder=dict(in_channels=(16, 32, 64, 128))),
        itm=dict(neck=dict(in_channels=128, out_channels=64)),
        mlm=dict(neck=dict(in_channels=128, out_channels=64))))

test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root))
train_dataloader = dict(test_dataloader, pin_memory=False)
val_dataloader = None
val_cfg = None
val_evaluator = None

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=100)
default_hooks = dict(logger=dict(interval=1))
auto_scale_lr = dict(base_batch_size=8)
