# Baseline: mmpretrain's MAE ViT-B/16, 400 epochs on ImageNet-1K, 8 x 512 (its
# mae_vit-base-p16_8xb512-amp-coslr-400e_in1k recipe).
#   bash tools/dist_train.sh configs/mae_vit-b_in1k.py 8
_base_ = [
    '_base_/models/mae_vit-base-p16.py',
    '_base_/datasets/imagenet_bs512_mae.py',
    '_base_/schedules/adamw_coslr-400e_mae.py',
    '_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True  # auto resume from the latest checkpoint in the work dir
