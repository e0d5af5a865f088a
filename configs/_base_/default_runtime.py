# Runtime shared by every famt_mm config (mirrors mmpretrain's default_runtime).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # complete or absent: written to a temporary file, fsync'ed, renamed (famt_mm.engine.checkpointing)
    checkpoint=dict(type='CheckpointHook', interval=1,
                    backend_args=dict(backend='famt_atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # a NaN / inf loss stops the run with a message (a dict entry: survives custom_hooks)
    nonfinite=dict(type='FAMTNonFiniteLossHook', action='stop'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
