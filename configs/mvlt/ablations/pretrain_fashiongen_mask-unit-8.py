# Paper table 3b: mask units of alpha = 8 patches (32 px) instead of 4.
_base_ = '../pretrain_fashiongen.py'

model = dict(data_preprocessor=dict(mask_generator=dict(unit_scale=8)))
