# FAMT SimMIM demo: tiny ViT on the embedded SyntheticObjects dataset, CPU friendly.
# Random SimMIM masking for 2 epochs, then FAMT on 16-px units (mask .44 / throw .26) with
# weight refreshes before epochs 3 and 5 (1-based, as the log lines count).
#   python tools/train.py configs/famt_simmim_vit-t_demo.py --work-dir work_dirs/famt_simmim_demo
_base_ = [
    '_base_/models/famt_simmim_vit-tiny-p8.py',
    '_base_/datasets/synthetic_objects_simmim.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config: _base_ first)

train_pipeline = famt_pipeline(_base_.train_pipeline)  # noqa: F821
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

custom_hooks = [dict(type='FAMTWeightHook', start_epoch=2, interval=2)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=0, diff_rank_seed=True)
