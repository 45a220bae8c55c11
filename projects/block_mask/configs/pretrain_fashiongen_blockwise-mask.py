# MVLT pre-training on Fashion-Gen with BEiT-style block-wise image masking
# instead of random-grid: everything else is the paper recipe.
# Run from the repository root (dist_train.sh puts it on PYTHONPATH, which
# `custom_imports` needs to find the `projects` package).
_base_ = ['../../../configs/mvlt/pretrain_fashiongen.py']

custom_imports = dict(
    imports=['projects.block_mask.block_mask'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(
        mask_generator=dict(
            _delete_=True,
            type='BlockwiseMask',
            mask_ratio=0.5,
            patch_size=4,
            unit_scale=4,
            fill_value=1e-6,
            min_block_units=16)))
