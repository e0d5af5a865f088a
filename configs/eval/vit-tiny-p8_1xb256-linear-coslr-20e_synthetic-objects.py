# Linear probe of the CPU demo's tiny ViT (configs/famt_mae_vit-t_demo.py or
# configs/mae_vit-t_demo.py: 192-d, 6 blocks, 64 px, 8 px patches) on the
# embedded SyntheticObjects labels (8 shapes): MAE's linear probe (frozen
# encoder, CLS token, BatchNorm, linear head, lr 0.1 x batch / 256) shortened to
# 2 + 18 epochs, with SGD instead of LARS (see the schedule below). Trains on
# split 'train' (2000 images), evaluates on split 'test' (1000 other images).
# About 8 minutes on 2 CPU cores (20 epochs; measured under load).
#   python tools/train.py configs/eval/vit-tiny-p8_1xb256-linear-coslr-20e_synthetic-objects.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/famt_demo/epoch_6.pth
#   python tools/test.py configs/eval/vit-tiny-p8_1xb256-linear-coslr-20e_synthetic-objects.py \
#       work_dirs/vit-tiny-p8_1xb256-linear-coslr-20e_synthetic-objects/epoch_20.pth
# ----------------------------------------------------------------------------
# PLACEHOLDER: the pre-training checkpoint to evaluate (its `backbone.*` weights
# are loaded by StrictPretrained: every key must fit, or training stops).
# Override with --cfg-options model.backbone.init_cfg.checkpoint=PATH
pretrained = 'work_dirs/famt_demo/epoch_6.pth'
# ----------------------------------------------------------------------------
_base_ = [
    '_base_/schedules/lars_coslr-90e_linear-probe.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=192, num_layers=6, num_heads=3, feedforward_channels=768),
        img_size=64,
        patch_size=8,
        frozen_stages=6,
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(type='StrictPretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=192),
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=8,
        in_channels=192,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

# dataset: rendered on the fly (no download), images already BGR uint8
data_preprocessor = dict(
    num_classes=8,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
# Milder crops than ImageNet's (0.08, 1): an object covers only 2-16% of the image.
train_pipeline = [
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='SyntheticObjects', num_samples=2000, img_size=64, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='SyntheticObjects', num_samples=1000, img_size=64, split='test',
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# schedule: 2 warm-up + 18 cosine epochs, lr = 0.1 x 256 / 256, fp32.
# SGD, not LARS: LARS scales each step to ~1e-3 of the weights' norm (its trust
# ratio), which suits ImageNet's ~7000 steps at lr 6.4; in this config's 160
# steps at lr 0.1 it leaves the head at its initialisation (loss ~ln 8).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=18, by_epoch=True, begin=2, end=20,
         eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=5)
auto_scale_lr = dict(base_batch_size=256)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1),
    logger=dict(type='LoggerHook', interval=4))
randomness = dict(seed=0)

# StrictPretrained loads the backbone before the Runner's init_weights (famt_mm.transfer).
custom_hooks = [dict(type='StrictPretrainedHook')]
