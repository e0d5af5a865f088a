# Baseline: plain SimMIM ViT-B/16 (mask-token ViT, linear decoder, L1), 200 epochs on
# ImageNet-1K, 8 x 256, random masking of 0.6 of the 32-px units.
#   bash tools/dist_train.sh configs/simmim_vit-b-p16_in1k.py 8
_base_ = [
    '_base_/models/simmim_vit-base-p16.py',
    '_base_/datasets/imagenet_bs256_simmim.py',
    '_base_/schedules/adamw_coslr-200e_simmim.py',
    '_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True  # auto resume from the latest checkpoint in the work dir
