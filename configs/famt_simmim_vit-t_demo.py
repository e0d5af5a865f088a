# FAMT SimMIM demo: tiny ViT on the embedded SyntheticObjects dataset, CPU friendly.
# Random SimMIM masking for 2 epochs, then FAMT on 16-px units (mask .44 / throw .26) with
# weight refreshes before epochs 3 and 5 (1-based, as the log lines count).
#   python tools/train.py configs/famt_simmim_vit-t_demo.py --work-dir work_dirs/famt_simmim_demo
_base_ = [
    '_base_/models/famt_simmim_vit-tiny-p8.py',
    '_base_/datasets/synthetic_objects_mae.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]

train_pipeline = [
    dict(type='FAMTRandomResizedCrop', scale=64, crop_ratio_range=(0.67, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs', meta_keys=('sample_idx', 'img_path', 'famt_crop', 'flip',
                                       'flip_direction')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

custom_hooks = [dict(type='FAMTWeightHook', start_epoch=2, interval=2)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=0, diff_rank_seed=True)
