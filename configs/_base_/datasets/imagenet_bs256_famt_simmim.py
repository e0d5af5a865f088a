# ImageNet-1K for FAMT SimMIM: the SimMIM pipeline with the crop box recorded (the weight
# maps follow the crop and the flip); the model draws the masks, so no SimMIMMaskGenerator.
_base_ = ['imagenet_bs256_simmim.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='FAMTRandomResizedCrop', scale=224, crop_ratio_range=(0.67, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs', meta_keys=('sample_idx', 'img_path', 'famt_crop', 'flip',
                                       'flip_direction')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
