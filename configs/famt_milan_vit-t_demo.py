# FAMT MILAN demo: tiny ViT (96-d x 4 blocks, 64 px, 8 px patches) on the embedded
# SyntheticObjects dataset, CPU friendly. The CLIP teacher is a tiny randomly initialised
# one (RandomCLIPGenerator: the pretrained CLIP is a download; the ImageNet config uses it).
# Random masking (.75, MILAN's share) for 2 epochs, then FAMT (mask .45 / throw .40) from
# epoch 3 (1-based), weights refreshed before epochs 3 and 4.
#   python tools/train.py configs/famt_milan_vit-t_demo.py --work-dir work_dirs/famt_milan
_base_ = [
    '_base_/datasets/synthetic_objects_mae.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config: _base_ first)

model = dict(
    type='FAMTMILAN',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='FAMTMILANViT',
        arch=dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384),
        img_size=64,
        patch_size=8,
        init_cfg=[
            dict(type='Xavier', distribution='uniform', layer='Linear'),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
        ]),
    neck=dict(
        type='FAMTMILANPretrainDecoder',
        num_patches=64,
        patch_size=8,
        embed_dim=96,
        decoder_embed_dim=64,
        decoder_depth=2,
        decoder_num_heads=2,
        predict_feature_dim=64,
        init_cfg=[
            dict(type='Xavier', distribution='uniform', layer='Linear'),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
        ]),
    head=dict(
        type='MIMHead',
        loss=dict(type='CosineSimilarityLoss', shift_factor=2.0, scale_factor=2.0)),
    target_generator=dict(type='RandomCLIPGenerator', img_size=64, patch_size=8, width=64,
                          num_layers=2, out_dims=64),
    mask_generator=dict(type='FAMTMaskGenerator', mask_ratio=0.45, throw_ratio=0.40,
                        random_mask_ratio=0.75),
    init_cfg=None)

train_pipeline = famt_pipeline(_base_.train_pipeline)  # noqa: F821
train_dataloader = dict(dataset=dict(num_samples=256, pipeline=train_pipeline))
train_cfg = dict(max_epochs=4)

custom_hooks = [dict(type='FAMTWeightHook', start_epoch=2, interval=1),
                dict(type='FAMTVisualizationHook', indices=[0, 1, 2, 3])]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=4),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=0, diff_rank_seed=True)
