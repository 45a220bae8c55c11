# The CPU demos' schedule (configs/mvlt/synthetic/): counted in iterations,
# batch 64 (no learning-rate scaling), a linear warm-up over warmup_iters
# then cosine decay to 1e-5 at max_iters; optimiser as adamw_cosine_150e.py.
# A leaf with another length sets max_iters / warmup_iters and restates the
# bounds: dict(_base_.param_scheduler[i], begin=..., end=...).
_base_ = ['./adamw_cosine_150e.py']

max_iters = 750
warmup_iters = 100
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup_iters,
        eta_min=1e-5,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=64, enable=False)
