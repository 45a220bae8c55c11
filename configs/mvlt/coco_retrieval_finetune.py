# Fine-tuning MVLT for MS-COCO retrieval (paper table 6, the ViLT standard):
# ITM with several negatives per positive (each image meets its caption and
# itm_extra_negatives captions of other images), MLM, and optionally the ITC
# objective (image-only / text-only passes) whose embeddings let the test
# re-rank only the top-k candidates. Karpathy train + restval, 384 px images,
# captions of 40 tokens; AdamW lr 1e-4, weight decay 0.01, 10 epochs with a
# linear warm-up then cosine decay (ViLT's recipe).
#   python tools/train.py configs/mvlt/coco_retrieval_finetune.py \
#       --cfg-options load_from=work_dirs/pretrain_fashiongen/epoch_150.pth
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/coco_retrieval.py',
    '../_base_/default_runtime.py',
]

# ITC makes re-ranked testing possible (configs/mvlt/coco_retrieval_test.py,
# test_cfg.mode='rerank'); set False to fine-tune ITM + MLM only.
with_itc = True

model = dict(
    data_preprocessor=dict(
        tokenizer={{_base_.tokenizer}},
        mask_generator=None,
        mlm_mask_ratio=0.15,
        itm_neg_ratio=0.0,
        itm_extra_negatives=3),
    backbone=dict(
        # The pre-trained position embeddings are for 256 px; 384 px inputs
        # resample them (bicubic) in every forward pass, so pre-trained
        # checkpoints load unchanged.
        img_size=256,
        text_len=128,
        init_cfg=None),
    heads=dict(
        mir=None,
        itc=dict(
            type='ITCHead',
            visual_channels=512,
            text_channels=512,
            embed_dim=256,
            loss_weight=1.0) if with_itc else None),
    predict_tasks=('itm', ))

load_from = 'work_dirs/pretrain_fashiongen/epoch_150.pth'

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        bypass_duplicate=True, norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0))
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
        eta_min=0.0,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
train_dataloader = dict(batch_size=32)
auto_scale_lr = dict(base_batch_size=256, enable=True)

# Full-gallery retrieval is too slow to validate during training; test the
# checkpoints with configs/mvlt/coco_retrieval_test.py.
val_dataloader = None
val_cfg = None
val_evaluator = None
