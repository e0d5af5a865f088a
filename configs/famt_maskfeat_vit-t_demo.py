# FAMT MaskFeat demo: tiny ViT (64-d x 4 blocks) on the embedded SyntheticObjects dataset, CPU
# friendly. 56 px images in 4 px patches: the 14 x 14 patch grid mmpretrain's HOGGenerator
# lays its features out on (cells of 4 px, 108 -> 27 HOG values per patch). Random masking
# (.4, the recipe's share) for 2 epochs, then FAMT (mask .45 / throw .40) from epoch 3
# (1-based), weights refreshed before epochs 3 and 4.
#   python tools/train.py configs/famt_maskfeat_vit-t_demo.py --work-dir work_dirs/famt_maskfeat
_base_ = [
    '_base_/datasets/synthetic_objects_mae.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config: _base_ first)

model = dict(
    type='FAMTMaskFeat',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='FAMTMaskFeatViT',
        arch=dict(embed_dims=64, num_layers=4, num_heads=2, feedforward_channels=256),
        img_size=56,
        patch_size=4),
    neck=dict(type='LinearNeck', in_channels=64, out_channels=27, norm_cfg=None,
              init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0)),
    head=dict(type='MIMHead', loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    target_generator=dict(type='HOGGenerator', nbins=9, pool=4, gaussian_window=14),
    mask_generator=dict(type='FAMTMaskGenerator', mask_ratio=0.45, throw_ratio=0.40,
                        random_mask_ratio=0.4))

train_pipeline = famt_pipeline([
    dict(type='RandomResizedCrop', scale=56, crop_ratio_range=(0.5, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
])
train_dataloader = dict(dataset=dict(num_samples=256, pipeline=train_pipeline))
train_cfg = dict(max_epochs=4)

custom_hooks = [dict(type='FAMTWeightHook', start_epoch=2, interval=1),
                dict(type='FAMTVisualizationHook', indices=[0, 1, 2, 3])]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=4),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=0, diff_rank_seed=True)
