# FAMT demo: tiny ViT on the embedded SyntheticObjects dataset, CPU friendly.
# Random MAE masking for 2 epochs, then FAMT (mask .45 / throw .40) with weight
# refreshes before epochs 3 and 5 (1-based, as every log line, picture and epoch_N.pth).
#   python tools/train.py configs/famt_mae_vit-t_demo.py --work-dir work_dirs/famt_demo
_base_ = [
    '_base_/models/famt_mae_vit-tiny-p8.py',
    '_base_/datasets/synthetic_objects_mae.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config: _base_ first)

train_pipeline = famt_pipeline(_base_.train_pipeline)  # noqa: F821
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

custom_hooks = [dict(type='FAMTWeightHook', start_epoch=2, interval=2),
                dict(type='FAMTVisualizationHook', indices=[0, 1, 2, 3])]
# A NaN / inf step is skipped (parameters unchanged) and counted; 5 in a row stop the run.
optim_wrapper = dict(type='FAMTOptimWrapper')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
    nonfinite=dict(type='FAMTNonFiniteLossHook', action='skip', max_consecutive=5))
randomness = dict(seed=0, diff_rank_seed=True)
