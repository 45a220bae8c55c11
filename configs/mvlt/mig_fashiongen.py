# Masked image generation on Fashion-Gen with a pre-trained MVLT (random-grid
# masks, r_v = 0.5, 16 px units):
#   python tools/test.py configs/mvlt/mig_fashiongen.py CKPT --show-dir vis/
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashiongen.py',
    '../_base_/tasks/mig.py',
    '../_base_/default_runtime.py',
]

train_dataloader = None
val_dataloader = None
