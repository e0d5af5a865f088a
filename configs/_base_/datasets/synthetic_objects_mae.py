# dataset settings: MAE pre-training on the embedded SyntheticObjects dataset
# (rendered on the fly, no download; needs ``custom_imports`` of famt_mm).
dataset_type = 'SyntheticObjects'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

# No LoadImageFromFile: the dataset items already hold the BGR image.
train_pipeline = [
    dict(
        type='RandomResizedCrop',
        scale=64,
        crop_ratio_range=(0.2, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        num_samples=2000,
        img_size=64,
        split='train',
        pipeline=train_pipeline))
