# Linear probe of a FAMT (or MAE) ViT-B/16 pre-training checkpoint on ImageNet-1K,
# after mmpretrain's MAE benchmark vit-base-p16_8xb2048-linear-coslr-90e_in1k.py:
# frozen encoder, CLS token, BatchNorm, linear head; LARS lr 6.4 at 8 x 2048, 90 epochs.
#   bash tools/dist_train.sh configs/eval/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py 8 \
#       --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/famt_mae_vit-b_in1k/epoch_400.pth
# ----------------------------------------------------------------------------
# PLACEHOLDER: the pre-training checkpoint to evaluate (its `backbone.*` weights
# are loaded by StrictPretrained: every key must fit, or training stops).
# Override with --cfg-options model.backbone.init_cfg.checkpoint=PATH
pretrained = 'work_dirs/famt_mae_vit-b_in1k/epoch_400.pth'
# ----------------------------------------------------------------------------
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '_base_/models/vit-base-p16_linear-probe.py',
    '_base_/schedules/lars_coslr-90e_linear-probe.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))

train_dataloader = dict(batch_size=2048, drop_last=True)
val_dataloader = dict(drop_last=False)
test_dataloader = dict(drop_last=False)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=10))
randomness = dict(seed=0, diff_rank_seed=True)
