# Fine-tuning of a FAMT (or MAE) ViT-S/16 pre-training checkpoint on CIFAR-100
# at 224 px: MAE's fine-tune recipe (AdamW lr 2e-3 at 8 x 128, layer decay
# 0.65, drop path 0.1, RandAugment, RandomErasing, Mixup / CutMix, label
# smoothing 0.1, 5 + 95 epochs).
#   bash tools/dist_train.sh configs/eval/vit-small-p16_8xb128-coslr-100e_cifar100.py 8 \
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
    '_base_/models/vit-small-p16_finetune.py',
    '_base_/schedules/adamw_coslr-100e_finetune.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(init_cfg=dict(checkpoint=pretrained)),
    head=dict(num_classes=100))

train_dataloader = dict(dataset=dict(pipeline={{_base_.finetune_train_pipeline}}))

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=10))
randomness = dict(seed=0, diff_rank_seed=True)
