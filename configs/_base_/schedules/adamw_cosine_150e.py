# Paper recipe (docs/method.md section 5): AdamW, lr 2.5e-3 for a total
# batch of 1,200, weight decay 1e-4, cosine decay after a short linear
# warm-up, 150 epochs.
optim_wrapper = dict(
    # An update with non-finite gradients is skipped and counted (the
    # NonFiniteGuardHook stops the run after 3 in a row); free with clip_grad.
    type='NonFiniteSkipOptimWrapper',
    # fused: one kernel per parameter group instead of ~10 passes per
    # parameter (CPU and CUDA; same update).
    optimizer=dict(
        type='AdamW',
        lr=2.5e-3,
        betas=(0.9, 0.999),
        weight_decay=1e-4,
        fused=True),
    paramwise_cfg=dict(
        # The MLM decoder shares its weight with the word embedding.
        bypass_duplicate=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'position_embeddings': dict(decay_mult=0.0),
            'token_type_embeddings': dict(decay_mult=0.0),
            # The ITC temperature: decay would pull it towards 1 (CLIP #46;
            # open_clip exempts its logit scale as well).
            'log_temperature': dict(decay_mult=0.0),
        }),
    clip_grad=dict(max_norm=5.0))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=145,
        eta_min=1e-6,
        by_epoch=True,
        begin=5,
        end=150,
        convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=150, val_interval=10)

# lr above is for 8 GPUs x 150 images; --auto-scale-lr rescales it linearly.
auto_scale_lr = dict(base_batch_size=1200, enable=False)
