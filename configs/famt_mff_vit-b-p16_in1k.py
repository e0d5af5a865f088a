# FAMT MFF ViT-B/16, 300 epochs on ImageNet-1K, 8 x 512: mmpretrain's own MFF recipe (model
# with its fused levels 1, 3, 5, 7, 9, 12; schedule; runtime) with FAMT masking (mask .45 /
# throw .40 of the 196 patches) from epoch 40, weights refreshed every 40 epochs.
# The one change to the recipe: its crop (torchvision Resize 224 + RandomCrop 224 with 4 px
# reflect padding) records no box on the source image for the weight maps to follow, so the
# images are cropped as in the MAE recipe MFF builds on (RandomResizedCrop 224, scale .2-1,
# flip), in FAMT's version (famt_pipeline).
#   bash tools/dist_train.sh configs/famt_mff_vit-b-p16_in1k.py 8
_base_ = 'mmpretrain::mff/mff_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'
from famt_mm.recipe import famt_model, famt_train_dataloader  # noqa: E402 (text config)

custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
model = famt_model('MFF', mask_ratio=0.45, throw_ratio=0.40)  # FAMT types, FAMTMaskGenerator
mae_crop_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]
train_dataloader = famt_train_dataloader(dict(  # noqa: F821
    _base_.train_dataloader, dataset=dict(_base_.train_dataloader.dataset,  # noqa: F821
                                          pipeline=mae_crop_pipeline)))
train_pipeline = train_dataloader['dataset']['pipeline']
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=256, log_interval=100)
]
