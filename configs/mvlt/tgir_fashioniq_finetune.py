# Text-guided image retrieval on FashionIQ ("like this, but in red"):
# fine-tune a pre-trained MVLT with the TGIR head, whose query is the joint
# pass of the reference image and the joined relative captions, against the
# ITC image embeddings of the targets (batch contrastive loss), then test
# FashionIQ's protocol on the validation split (docs/tgir.md).
#   python tools/train.py configs/mvlt/tgir_fashioniq_finetune.py \
#       --cfg-options load_from=work_dirs/pretrain_fashiongen/epoch_150.pth
#   python tools/test.py configs/mvlt/tgir_fashioniq_finetune.py \
#       work_dirs/tgir_fashioniq_finetune/epoch_10.pth
# A pre-trained checkpoint without an ITC head (the paper's recipe) starts
# the ITC image projection from scratch; the TGIR loss trains it.
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashioniq.py',
    '../_base_/schedules/adamw_vilt_finetune_10e.py',
    '../_base_/tasks/tgir.py',
    '../_base_/default_runtime.py',
]

model = dict(
    heads=dict(
        _delete_=True,
        itc=_base_.itc_head,
        tgir=dict(_base_.tgir_head, embed_dim=_base_.itc_head.embed_dim)),
    train_objectives=('tgir', ),
    predict_tasks=('tgir', ))

load_from = 'work_dirs/pretrain_fashiongen/epoch_150.pth'

train_dataloader = dict(batch_size=32)
