# MVLT pre-training on Fashion-Gen with BEiT-style block-wise image masking
# instead of random-grid: everything else is the paper recipe.
# The tools find the `projects` package of `custom_imports` in the folder
# above this config that holds it (mvlt/utils/config.py, load_config).
_base_ = ['../../../configs/mvlt/pretrain_fashiongen.py']

custom_imports = dict(
    imports=['projects.block_mask.block_mask'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(
        mask_generator=dict(type='BlockwiseMask', min_block_units=16)))
