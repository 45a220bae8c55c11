# Category (M-CR, 48 classes) and sub-category (S-CR, 122 classes)
# recognition on Fashion-Gen (paper section 3.3): two FC heads on the [CLS]
# of T^4, fine-tuned end to end from a pre-trained MVLT with cross-entropy on
# both label sets. With the category head alone the model gets its images
# and captions unmasked and matched. Fine-tuning reuses the pre-training
# settings (docs/method.md section 5) over a shorter schedule.
#   python tools/train.py configs/mvlt/recognition_fashiongen_finetune.py \
#       --cfg-options load_from=work_dirs/pretrain_fashiongen/epoch_150.pth
#   python tools/test.py configs/mvlt/recognition_fashiongen_finetune.py \
#       work_dirs/recognition_fashiongen_finetune/epoch_10.pth
# (a checkpoint without the category head, e.g. a pre-trained one, is an
# error at test time).
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashiongen.py',
    '../_base_/schedules/adamw_cosine_10e.py',
    '../_base_/tasks/recognition.py',
    '../_base_/default_runtime.py',
]

model = dict(
    heads=dict(
        _delete_=True,
        category=dict(
            _base_.category_head, num_categories=48, num_subcategories=122)))

# The pre-trained model (MMEngine loads it non-strictly: the category head
# starts from scratch, the pre-training heads are dropped).
load_from = 'work_dirs/pretrain_fashiongen/epoch_150.pth'

# Fashion-Gen has no separate validation split: the validation file is the
# test set, so it is evaluated here only to follow progress.
train_cfg = dict(val_interval=5)
train_dataloader = dict(batch_size=150)
