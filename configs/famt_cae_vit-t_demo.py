# FAMT CAE demo: tiny BEiT-style ViT (192-d x 6 blocks, 8-px patches, 64 px) on the embedded
# SyntheticObjects dataset, CPU friendly. The DALL-E tokenizer is a tiny one with random
# weights (the real one is a download; configs/famt_cae_beit-base-p16_in1k.py uses it).
# Random masking (.4, nothing thrown) for 2 epochs, then FAMT (mask .45 / throw .40) with
# weight refreshes before epochs 3 and 5 (1-based, as the log lines count).
#   python tools/train.py configs/famt_cae_vit-t_demo.py --work-dir work_dirs/famt_cae_demo
_base_ = [
    '_base_/datasets/synthetic_objects_mae.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config)

# CAE's two views: the encoder's (ImageNet mean / std) and the tokenizer's (DALL-E's
# [0.1, 0.9] range); the FAMT class also normalises the refresh's one-view batches.
data_preprocessor = dict(
    _delete_=True,
    type='FAMTTwoNormDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    second_mean=[-31.875, -31.875, -31.875],
    second_std=[318.75, 318.75, 318.75],
    to_rgb=True)

# No LoadImageFromFile (the dataset items hold the image); the recipe's flip, then one crop
# box resized to both views: 64 px for the encoder, 64 px = 8 tokens of 8 px for DALL-E;
# famt_pipeline records the crop box and drops BEiTMaskGenerator (the model draws the sets)
train_pipeline = famt_pipeline([
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizedCropAndInterpolationWithTwoPic', size=64, second_size=64,
         interpolation='bicubic', second_interpolation='lanczos', scale=(0.2, 1.0)),
    dict(type='BEiTMaskGenerator', input_size=(8, 8), num_masking_patches=25,
         max_num_patches=None, min_num_patches=4),
    dict(type='PackInputs'),
])
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, num_samples=512))

embed_dims = 192
model = dict(
    type='FAMTCAE',
    backbone=dict(
        type='FAMTCAEViT',
        arch=dict(embed_dims=embed_dims, num_layers=6, num_heads=3, feedforward_channels=768),
        img_size=64,
        patch_size=8,
        layer_scale_init_value=0.1,
        bias='qv_bias'),
    neck=dict(
        type='FAMTCAENeck',
        num_classes=256,
        embed_dims=embed_dims,
        num_heads=3,
        regressor_depth=2,
        decoder_depth=2,
        mlp_ratio=4,
        layer_scale_init_value=0.1),
    head=dict(type='CAEHead', loss=dict(type='CAELoss', lambd=2)),
    # a tiny DALL-E encoder (4 groups of 1 block, 16..128 channels, 256 tokens), random
    # weights, never trained (as the real one in CAE)
    target_generator=dict(type='DALL-E', n_hid=16, n_blk_per_group=1, vocab_size=256,
                          init_cfg=None),
    base_momentum=0.0,
    mask_generator=dict(
        type='FAMTMaskGenerator',
        mask_ratio=0.45,
        throw_ratio=0.40,
        random_mask_ratio=0.4,
        terms=('attention', 'frequency'),
        combine='product',
        term_args=dict(frequency=dict(cutoff=0.15))))

# CAE's optimiser groups: no decay on biases, norms and cls / pos tokens
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(bias_decay_mult=0.0, norm_decay_mult=0.0, flat_decay_mult=0.0))
find_unused_parameters = True

custom_hooks = [dict(type='FAMTWeightHook', start_epoch=2, interval=2),
                dict(type='FAMTVisualizationHook', indices=[0, 1, 2, 3])]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=0, diff_rank_seed=True)
