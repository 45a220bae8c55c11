# Masked image generation (MIG, paper section 3.3) on Fashion-Gen: the
# pre-trained MIR decoder reconstructs validation images masked with the
# pre-training strategy (random-grid, r_v = 0.5, 16 px units). Reports PSNR
# and SSIM on the masked pixels and on the whole image; --show-dir saves
# masked / reconstructed / original triplets. Each image's mask is seeded by
# its index (eval_mask_seed), so every run and model sees the same masks.
#   python tools/test.py configs/mvlt/mig_fashiongen.py CKPT --show-dir vis/
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashiongen.py',
    '../_base_/default_runtime.py',
]

model = dict(
    data_preprocessor=dict(
        tokenizer={{_base_.tokenizer}},
        mask_images_in_eval=True,
        eval_mask_seed=0),
    backbone=dict(
        img_size={{_base_.img_size}},
        text_len={{_base_.text_len}},
        init_cfg=None),
    predict_tasks=('mir', ))

test_cfg = dict(type='MVLTTestLoop')
test_evaluator = dict(type='ReconstructionMetric')

train_dataloader = None
val_dataloader = None
