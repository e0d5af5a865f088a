# FAMT SimMIM ViT-B/16, 200 epochs on ImageNet-1K, 8 x 256 (the AMT code's SimMIM recipe):
# random SimMIM masking until epoch 40, then FAMT masking (.44) and throwing (.26) of the
# 32-px units, weights refreshed every 40 epochs.
#   bash tools/dist_train.sh configs/famt_simmim_vit-b-p16_in1k.py 8
_base_ = [
    '_base_/models/famt_simmim_vit-base-p16.py',
    '_base_/datasets/imagenet_bs256_famt_simmim.py',
    '_base_/schedules/adamw_coslr-200e_simmim.py',
    '_base_/default_runtime.py',
]
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=256, log_interval=100)
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True  # auto resume from the latest checkpoint in the work dir
