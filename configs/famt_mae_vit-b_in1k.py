# FAMT ViT-B/16, 400 epochs on ImageNet-1K, 8 x 512: MAE's recipe with FAMT
# masking (mask .45 / throw .40) from epoch 40, weights refreshed every 40 epochs.
#   bash tools/dist_train.sh configs/famt_mae_vit-b_in1k.py 8
_base_ = [
    '_base_/models/famt_mae_vit-base-p16.py',
    '_base_/datasets/imagenet_bs512_famt.py',
    '_base_/schedules/adamw_coslr-400e_mae.py',
    '_base_/default_runtime.py',
]
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=256, log_interval=100)
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True  # auto resume from the latest checkpoint in the work dir
