# Masked image generation on the synthetic Fashion-Gen with the demo model:
# PSNR / SSIM on masked pixels and whole images, triplets with --show-dir.
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/default_runtime.py',
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
