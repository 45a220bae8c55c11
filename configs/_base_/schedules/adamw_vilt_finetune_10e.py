# ViLT's fine-tuning optimiser (Kim et al., 2021, section 4): AdamW, lr 1e-4
# for batch 256, weight decay 0.01 (none on norms and biases), 10 epochs of
# adamw_cosine_10e.py's warm-up then cosine decay to 0.
_base_ = ['./adamw_cosine_10e.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], eta_min=0.0),
]
auto_scale_lr = dict(base_batch_size=256)
