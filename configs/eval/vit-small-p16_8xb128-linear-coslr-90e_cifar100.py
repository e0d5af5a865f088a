# Linear probe of a FAMT (or MAE) ViT-S/16 pre-training checkpoint on CIFAR-100
# at 224 px: MAE's linear probe (frozen encoder, CLS token, BatchNorm, linear
# head; LARS, 10 + 80 epochs) with lr 6.4 x 1024 / 16384 = 0.4 at 8 x 128.
#   bash tools/dist_train.sh configs/eval/vit-small-p16_8xb128-linear-coslr-90e_cifar100.py 8 \
#       --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/famt_mae_vit-s_cifar100/epoch_400.pth
# ----------------------------------------------------------------------------
# PLACEHOLDER: the pre-training checkpoint to evaluate (its `backbone.*` weights
# are loaded by StrictPretrained: every key must fit, or training stops).
# Override with --cfg-options model.backbone.init_cfg.checkpoint=PATH
pretrained = 'work_dirs/famt_mae_vit-s_cifar100/epoch_400.pth'
# ----------------------------------------------------------------------------
_base_ = [
    '_base_/datasets/cifar100_bs128_224.py',
    '_base_/models/vit-small-p16_linear-probe.py',
    '_base_/schedules/lars_coslr-90e_linear-probe.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(init_cfg=dict(checkpoint=pretrained)),
    head=dict(num_classes=100))

optim_wrapper = dict(optimizer=dict(lr=6.4 * 1024 / 16384))
auto_scale_lr = dict(base_batch_size=1024)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=10))
randomness = dict(seed=0, diff_rank_seed=True)
