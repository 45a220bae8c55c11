# Paper table 3c: free-form brush strokes (drawn on 4 px units) instead of
# random-grid.
_base_ = '../pretrain_fashiongen.py'

model = dict(
    data_preprocessor=dict(
        mask_generator=dict(
            _delete_=True,
            type='StrokeMask',
            mask_ratio=0.5,
            patch_size=4,
            unit_scale=1,
            fill_value=1e-6)))
