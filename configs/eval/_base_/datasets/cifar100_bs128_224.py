# CIFAR100 for linear probing / fine-tuning at 224 px (the 32 px images upsampled,
# as in pre-training): mmpretrain's CIFAR100 dataset reads the python-pickle files
# of the official archive from data/cifar100/ (cifar-*-python/ or its files;
# downloaded there when missing and the machine is online).
dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
# ImageNet statistics, as in pre-training; CIFAR arrays are RGB already.
data_preprocessor = dict(
    num_classes=100,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=False)

# Linear probe: MAE's (RandomResizedCrop + flip).
train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
# Fine-tuning: MAE's (+ RandAugment, RandomErasing; fill colours in RGB order).
finetune_train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[124, 116, 104], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=[123.675, 116.28, 103.53],
         fill_std=[58.395, 57.12, 57.375]),
    dict(type='PackInputs'),
]
# Whole image upsampled to 224 (no centre crop: a 32 px image has no margin to lose).
test_pipeline = [
    dict(type='Resize', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
