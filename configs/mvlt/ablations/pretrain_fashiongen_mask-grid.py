# Paper table 3c: grid masking (a checkerboard of 16 px units) instead of
# random-grid.
_base_ = '../pretrain_fashiongen.py'

model = dict(data_preprocessor=dict(mask_generator=dict(type='GridMask')))
