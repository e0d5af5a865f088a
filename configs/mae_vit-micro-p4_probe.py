# MAE baseline of the CPU probe experiment (docs/evaluation.md): mmpretrain's MAE (random
# masking 0.75) with a micro ViT on 32 x 32 SyntheticObjects. The experiment tool
# (tools/analysis/mae_vs_famt_probe.py) replaces train_cfg by its budgeted loop.
#   python tools/train.py configs/mae_vit-micro-p4_probe.py --work-dir work_dirs/mae_probe
_base_ = [
    '_base_/models/mae_vit-micro-p4.py',
    '_base_/datasets/synthetic_objects_probe.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]
optim_wrapper = dict(optimizer=dict(lr=3e-3))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=22, by_epoch=True, begin=2, end=24,
         convert_to_iter_based=True),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1))
randomness = dict(seed=0, diff_rank_seed=True)
