# FAMT, ViT-S/16 at 224 px, 400 epochs on CIFAR-10, 8 x 512 (the public FAMT
# repository's small-dataset recipe): mask .45 / throw .40 from epoch 40,
# weights refreshed every 40 epochs.
#   bash tools/dist_train.sh configs/famt_mae_vit-s_cifar10.py 8
_base_ = [
    '_base_/models/famt_mae_vit-small-p16.py',
    '_base_/datasets/cifar10_mae.py',
    '_base_/schedules/adamw_coslr-400e_small.py',
    '_base_/default_runtime.py',
]
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config: _base_ first)

train_pipeline = famt_pipeline(_base_.train_pipeline)  # noqa: F821
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=256)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
