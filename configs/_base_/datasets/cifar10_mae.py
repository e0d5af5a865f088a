# CIFAR10 (python-pickle files, read offline) upsampled to 224 for MAE pre-training.
# Extract the python-version archive into data/cifar10/ (giving data/cifar10/cifar-10-batches-py/).
dataset_type = 'CIFAR10'
data_root = 'data/cifar10/'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=False)  # CIFAR arrays are RGB already

train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs')
]

train_dataloader = dict(
    batch_size=512,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
