# Test of the recognition fine-tuning: accuracy, macro-F1 and
# SumC = (A + macro-F) x 100 for M-CR and S-CR on the validation file.
#   python tools/test.py configs/mvlt/recognition_fashiongen_test.py \
#       work_dirs/recognition_fashiongen_finetune/epoch_10.pth
# A checkpoint without the category head (e.g. a pre-trained one) is an
# error.
_base_ = ['./recognition_fashiongen_finetune.py']

load_from = None
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
auto_scale_lr = None
val_dataloader = None
val_cfg = None
val_evaluator = None
