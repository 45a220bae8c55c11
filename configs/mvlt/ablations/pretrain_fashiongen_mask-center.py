# Paper table 3c: one central block (half of the image area) instead of
# random-grid.
_base_ = '../pretrain_fashiongen.py'

model = dict(data_preprocessor=dict(mask_generator=dict(type='CenterMask')))
