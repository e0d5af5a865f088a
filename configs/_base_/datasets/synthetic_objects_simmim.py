# dataset settings: SimMIM pre-training on the embedded SyntheticObjects dataset (as
# synthetic_objects_mae.py; crops of 0.67-1 of the image, random masking of 0.6 of the 16-px
# units, expanded to the 8-px patches). The FAMT SimMIM demo derives its pipeline from this one.
_base_ = ['synthetic_objects_mae.py']
train_pipeline = [
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.67, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SimMIMMaskGenerator', input_size=64, mask_patch_size=16, model_patch_size=8,
         mask_ratio=0.6),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
