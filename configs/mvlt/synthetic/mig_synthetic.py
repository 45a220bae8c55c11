# Masked image generation on the synthetic Fashion-Gen with the demo model:
# PSNR / SSIM on masked pixels and whole images, triplets with --show-dir.
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/tasks/mig.py',
    '../../_base_/default_runtime.py',
]

train_dataloader = None
val_dataloader = None
