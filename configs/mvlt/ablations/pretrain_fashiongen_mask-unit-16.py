# Paper table 3b: mask units of alpha = 16 patches (64 px) instead of 4.
_base_ = '../pretrain_fashiongen.py'

model = dict(data_preprocessor=dict(mask_generator=dict(unit_scale=16)))
