# ImageNet-1K for SimMIM ViT pre-training at 224 px (mmpretrain's imagenet_bs256_simmim_192
# at 224): crop ratio 0.67-1, flip, random masking of 0.6 of the 32-px units (7 x 7),
# expanded to the 16-px patches.
_base_ = ['imagenet_bs512_mae.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.67, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SimMIMMaskGenerator', input_size=224, mask_patch_size=32, model_patch_size=16,
         mask_ratio=0.6),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=256, dataset=dict(pipeline=train_pipeline))
