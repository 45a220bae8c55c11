# Category (M-CR, 48 classes) and sub-category (S-CR, 122 classes)
# recognition on Fashion-Gen (paper section 3.3): two FC heads on the [CLS]
# of T^4, fine-tuned end to end from a pre-trained MVLT with cross-entropy on
# both label sets. Images and captions go in unmasked and matched (no ITM
# negatives, no MLM / MIR). Fine-tuning reuses the pre-training settings
# (SPEC section 5) over a shorter schedule.
#   python tools/train.py configs/mvlt/recognition_fashiongen_finetune.py \
#       --cfg-options load_from=work_dirs/pretrain_fashiongen/epoch_150.pth
# then test with configs/mvlt/recognition_fashiongen_test.py.
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashiongen.py',
    '../_base_/schedules/adamw_cosine_150e.py',
    '../_base_/default_runtime.py',
]

num_categories = 48
num_subcategories = 122

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
            num_categories=num_categories,
            num_subcategories=num_subcategories,
            in_channels=512,
            hidden_channels=768,
            loss_weight=1.0)),
    train_objectives=('category', ),
    predict_tasks=('category', ))

# The pre-trained model (MMEngine loads it non-strictly: the category head
# starts from scratch, the pre-training heads are dropped).
load_from = 'work_dirs/pretrain_fashiongen/epoch_150.pth'

max_epochs = 10
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        eta_min=1e-6,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
train_dataloader = dict(batch_size=150)
auto_scale_lr = dict(base_batch_size=1200, enable=True)

# Fashion-Gen has no separate validation split: the validation file is the
# test set, so it is evaluated here only to follow progress.
val_cfg = dict(type='ValLoop')
val_evaluator = dict(type='RecognitionMetric', split='validation')
test_cfg = dict(type='MVLTTestLoop')
test_evaluator = dict(type='RecognitionMetric', split='validation')
