# Runtime settings shared by every mvlt config.
default_scope = 'mvlt'
# MMEngine's Runner with atomic checkpoint writes and the optional CPU heap
# tuning of env_cfg (the tools build RUNNERS.build(cfg)).
runner_type = 'MVLTRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Writes the checkpoint, then last_checkpoint, then prunes old ones: a
    # kill at any moment leaves a loadable last checkpoint.
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    # A loaded checkpoint (load_from, resume, tools/test.py) whose tensors
    # have other shapes than the model's is refused, naming the file and,
    # for word-piece tables, both vocabulary sizes (MMEngine only warns).
    checkpoint_shape_check=dict(type='CheckpointShapeCheckHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # RNG states and the data position in checkpoints (exact resume; the
    # mid-epoch position needs train_dataloader.sampler 'ResumableSampler').
    resume_state=dict(type='ResumeStateHook'),
    # NaN / Inf loss terms: named with the iteration; with
    # optim_wrapper.type='NonFiniteSkipOptimWrapper' (or AMP) the update is
    # skipped and counted and the run stops after max_consecutive in a row,
    # otherwise it stops at the first. Nothing non-finite is saved.
    nonfinite_guard=dict(type='NonFiniteGuardHook', max_consecutive=3),
    # Samples skipped under on_bad_sample='skip', in the training log.
    bad_samples=dict(type='BadSampleCounterHook'),
    # A loaded checkpoint's category names must equal the data's (a shifted
    # id list would give wrong classes silently); 'warn' for fine-tuning on
    # other classes with re-initialised heads.
    label_map_check=dict(type='LabelMapCheckHook', on_mismatch='error'),
    # Keeps the heads a loaded checkpoint holds; the test loops refuse a
    # checkpoint without the heads their task needs (MMEngine would score
    # with randomly initialised ones) without reading the file again.
    checkpoint_heads=dict(type='CheckpointHeadsHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # 'nccl' on GPUs; tools switch to 'gloo' on machines without CUDA.
    dist_cfg=dict(backend='nccl', timeout=1800),
    # MVLTRunner: without CUDA, keep freed heap memory in the process (glibc
    # mallopt, process-wide; ~20 % faster CPU steps, the resident set stays
    # at its peak; docs/benchmark.md). MMEngine's Runner ignores the key.
    cpu_malloc_tuning=True,
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

# MMEngine's LogProcessor whose training lines show the position in the
# epoch also after a resume in the middle of an epoch.
log_processor = dict(
    type='ResumeAwareLogProcessor', window_size=10, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
