# ImageNet-1K for FAMT pre-training: the MAE pipeline, with the crop box recorded
# so that the weight maps follow RandomResizedCrop + RandomFlip.
_base_ = ['imagenet_bs512_mae.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='FAMTRandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs', meta_keys=('sample_idx', 'img_path', 'famt_crop', 'flip',
                                       'flip_direction')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
