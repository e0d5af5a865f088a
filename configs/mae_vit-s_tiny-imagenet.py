# Baseline: mmpretrain's MAE, ViT-S/16 at 224 px, 400 epochs on Tiny ImageNet, 8 x 512.
#   bash tools/dist_train.sh configs/mae_vit-s_tiny-imagenet.py 8
_base_ = [
    '_base_/models/mae_vit-small-p16.py',
    '_base_/datasets/tiny_imagenet_mae.py',
    '_base_/schedules/adamw_coslr-400e_small.py',
    '_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
