# Fine-tuning MVLT for MS-COCO retrieval (paper table 6, the ViLT standard):
# ITM with several negatives per positive (each image meets its caption and
# itm_extra_negatives captions of other images), MLM, and optionally the ITC
# objective (image-only / text-only passes) whose embeddings let the test
# re-rank only the top-k candidates. Karpathy train + restval, 384 px images,
# captions of 40 tokens; AdamW lr 1e-4, weight decay 0.01, 10 epochs with a
# linear warm-up then cosine decay (ViLT's recipe).
# Precision: float32; `tools/train.py ... --amp` trains in bf16 on GPUs that
# have it (A100, H100, H200: AutocastOptimWrapper, no loss scaling) and in
# fp16 with dynamic loss scaling on older ones (V100, T4: AmpOptimWrapper).
#   python tools/train.py configs/mvlt/coco_retrieval_finetune.py \
#       --cfg-options load_from=work_dirs/pretrain_fashiongen/epoch_150.pth
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/coco_retrieval.py',
    '../_base_/schedules/adamw_vilt_finetune_10e.py',
    '../_base_/default_runtime.py',
]

# ITC makes re-ranked testing possible (configs/mvlt/coco_retrieval_test.py,
# test_cfg.mode='rerank'); set False to fine-tune ITM + MLM only.
with_itc = True

model = dict(
    data_preprocessor=dict(
        # 384 px square images and captions of 40 word pieces, as in
        # ViLT-style COCO fine-tuning; COCO photos keep their background.
        img_size=384,
        text_len=40,
        foreground_crop=None),
    # Every image meets its caption and 3 captions of other images.
    itm_sampler=dict(type='RandomNegatives', neg_ratio=0.0, extra_negatives=3),
    backbone=dict(
        # The pre-trained position embeddings are for 256 px and 128
        # tokens; 384 px inputs resample them (bicubic) in every forward
        # pass, so pre-trained checkpoints load unchanged.
        img_size=256,
        text_len=128),
    heads=dict(
        mir=None,
        itc=dict(
            type='ITCHead',
            visual_channels=512,
            text_channels=512,
            embed_dim=256,
            loss_weight=1.0) if with_itc else None))

load_from = 'work_dirs/pretrain_fashiongen/epoch_150.pth'

optim_wrapper = dict(
    paramwise_cfg=dict(
        # The MLM decoder shares its weight with the word embedding; the ITC
        # temperature is never decayed (as in adamw_cosine_150e.py).
        bypass_duplicate=True,
        custom_keys=dict(log_temperature=dict(decay_mult=0.0))))
train_dataloader = dict(batch_size=32)
auto_scale_lr = dict(enable=True)

# Full-gallery retrieval is too slow to validate during training; test the
# checkpoints with configs/mvlt/coco_retrieval_test.py.
val_dataloader = None
val_cfg = None
val_evaluator = None
