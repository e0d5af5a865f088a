# FAMT BEiT v2 demo: a tiny BEiT ViT on the embedded SyntheticObjects dataset, CPU friendly.
# The VQ-KD tokenizer is a tiny one with random weights (the real one is a download:
# configs/famt_beitv2_vit-b-p16_in1k.py); its 8 x 8 tokens of the 64-px second view are the
# encoder's 8 x 8 patches. The neck's two extra layers take layer 4's patch tokens with the
# last CLS, as BEiTV2Neck does. Uniform random masking (FAMT's, not BEiT's blocks) of .40 for
# 2 epochs, then FAMT (mask .45 / throw .40) with refreshes before epochs 3 and 4 (1-based).
#   python tools/train.py configs/famt_beitv2_vit-t_demo.py --work-dir work_dirs/famt_beitv2_demo
_base_ = [
    '_base_/datasets/synthetic_objects_mae.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config)

data_preprocessor = dict(  # BEiT v2's: the second view in [-1, 1]
    type='FAMTTwoNormDataPreprocessor',
    second_mean=[127.5, 127.5, 127.5],
    second_std=[127.5, 127.5, 127.5])
# mmpretrain's BEiT v2 pipeline at 64 px (no file loading: the dataset holds the images);
# famt_pipeline records the crop box and drops BEiTMaskGenerator (the model draws the sets)
train_pipeline = famt_pipeline([
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomResizedCropAndInterpolationWithTwoPic', size=64, second_size=64,
         interpolation='bicubic', second_interpolation='bicubic', scale=(0.2, 1.0)),
    dict(type='BEiTMaskGenerator', input_size=(8, 8), num_masking_patches=25,
         max_num_patches=25, min_num_patches=4),
    dict(type='PackInputs'),
])
train_dataloader = dict(dataset=dict(num_samples=320, pipeline=train_pipeline))

arch = dict(embed_dims=192, num_layers=6, num_heads=3, feedforward_channels=768)
model = dict(
    type='FAMTBEiT',
    backbone=dict(
        type='FAMTBEiTPretrainViT',
        arch=arch,
        img_size=64,
        patch_size=8,
        out_indices=[-3, -1],
        final_norm=False,
        out_type='raw',
        layer_scale_init_value=0.1,
        init_cfg=[
            dict(type='TruncNormal', std=0.02, layer='Linear'),
            dict(type='TruncNormal', std=0.02, layer='Conv2d'),
            dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
        ]),
    neck=dict(type='BEiTV2Neck', num_layers=2, early_layers=4,
              backbone_arch=dict(arch, depth=6), layer_scale_init_value=0.1),
    head=dict(type='BEiTV2Head', embed_dims=192, num_embed=512,
              loss=dict(type='CrossEntropyLoss')),
    target_generator=dict(
        type='VQKD',
        num_embed=512,
        embed_dims=32,
        quantize_kmeans_init=False,
        encoder_config=dict(
            arch=dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128),
            img_size=64, patch_size=8, final_norm=True, out_type='featmap',
            use_abs_pos_emb=True, use_rel_pos_bias=False, layer_scale_init_value=0.)),
    mask_generator=dict(
        type='FAMTMaskGenerator',
        mask_ratio=0.45,
        throw_ratio=0.40,
        random_mask_ratio=0.40,  # BEiT masks 75 of 196 patches
        terms=('attention', 'frequency'),
        combine='product',
        term_args=dict(frequency=dict(cutoff=0.15))))

train_cfg = dict(max_epochs=4)
custom_hooks = [dict(type='FAMTWeightHook', start_epoch=2, interval=1),
                dict(type='FAMTVisualizationHook', indices=[0, 1, 2, 3])]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=0, diff_rank_seed=True)
