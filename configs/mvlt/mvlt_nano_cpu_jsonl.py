# A nano MVLT that trains on CPU in seconds: 64 px images, one block per
# stage, narrow widths, captions of 32 tokens, a vocabulary built from the
# data (vocab_size=None takes the tokenizer's size). Used by the tests.
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/image_text_jsonl.py',
    '../_base_/schedules/adamw_cosine_150e.py',
    '../_base_/default_runtime.py',
]

data_root = 'data/nano/'
tokenizer = dict(vocab_file=data_root + 'vocab.txt')
img_size = 64
text_len = 32

model = dict(
    data_preprocessor=dict(
        tokenizer=tokenizer,
        mask_generator=dict(unit_scale=2),  # 8 px units, 64 per image
        mask_images_in_eval=True),
    predict_tasks=('mir', ),
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=(16, 32, 64, 128),
            depths=(1, 1, 1, 1),
            num_heads=(1, 1, 2, 4),
            mlp_ratios=(4, 4, 4, 4),
            sr_ratios=(4, 2, 1, 1)),
        img_size=img_size,
        text_len=text_len,
        text_hidden=64,
        vocab_size=None,
        drop_path_rate=0.0),
    heads=dict(
        mir=dict(
            decoder=dict(in_channels=(16, 32, 64, 128), channels=(64, 32,
                                                                  16))),
        itm=dict(neck=dict(in_channels=128, out_channels=64)),
        mlm=dict(
            neck=dict(in_channels=128, out_channels=64),
            hidden_size=64,
            vocab_size=None)))

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='Tokenize', tokenizer=tokenizer, max_length=text_len),
    dict(type='PackMVLTInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None

# Masked image generation as the test task of this config.
test_evaluator = dict(type='ReconstructionMetric')

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=100)
default_hooks = dict(logger=dict(interval=1))
auto_scale_lr = dict(base_batch_size=8)
