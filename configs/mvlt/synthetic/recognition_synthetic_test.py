# Test of the synthetic recognition fine-tuning: A, macro-F, SumC of M-CR and
# S-CR on the validation file.
_base_ = ['./recognition_synthetic_finetune.py']

load_from = None
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
auto_scale_lr = None
