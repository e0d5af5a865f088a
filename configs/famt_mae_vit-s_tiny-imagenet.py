# FAMT, ViT-S/16 at 224 px, 400 epochs on Tiny ImageNet, 8 x 512 (the public FAMT
# repository's small-dataset recipe): mask .45 / throw .40 from epoch 40,
# weights refreshed every 40 epochs.
#   bash tools/dist_train.sh configs/famt_mae_vit-s_tiny-imagenet.py 8
_base_ = [
    '_base_/models/famt_mae_vit-small-p16.py',
    '_base_/datasets/tiny_imagenet_mae.py',
    '_base_/schedules/adamw_coslr-400e_small.py',
    '_base_/default_runtime.py',
]
train_pipeline = [
    dict(type='FAMTLoadImageFromFile'),  # names an unreadable file
    dict(type='FAMTRandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs', meta_keys=('sample_idx', 'img_path', 'famt_crop', 'flip',
                                       'flip_direction')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=256)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
