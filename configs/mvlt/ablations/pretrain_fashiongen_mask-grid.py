# Paper table 3c: grid masking (a checkerboard of 16 px units) instead of
# random-grid.
_base_ = '../pretrain_fashiongen.py'

model = dict(
    data_preprocessor=dict(
        mask_generator=dict(
            _delete_=True,
            type='GridMask',
            mask_ratio=0.5,
            patch_size=4,
            unit_scale=4,
            fill_value=1e-6)))
