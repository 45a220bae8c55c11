# Paper table 3c: free-form brush strokes (drawn on 4 px units) instead of
# random-grid.
_base_ = '../pretrain_fashiongen.py'

model = dict(
    data_preprocessor=dict(
        mask_generator=dict(type='StrokeMask', unit_scale=1)))
