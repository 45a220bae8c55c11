# Paper table 3a: image mask ratio r_v = 0.3 instead of 0.5.
_base_ = '../pretrain_fashiongen.py'

model = dict(data_preprocessor=dict(mask_generator=dict(mask_ratio=0.3)))
