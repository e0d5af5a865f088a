# Fine-tuning of a FAMT (or MAE) ViT-B/16 pre-training checkpoint on ImageNet-1K,
# after mmpretrain's MAE benchmark vit-base-p16_8xb128-coslr-100e_in1k.py:
# AdamW lr 2e-3 at 8 x 128, layer decay 0.65, drop path 0.1, RandAugment,
# RandomErasing, Mixup / CutMix, label smoothing, 100 epochs.
#   bash tools/dist_train.sh configs/eval/vit-base-p16_8xb128-coslr-100e_in1k.py 8 \
#       --cfg-options \
#       model.backbone.init_cfg.checkpoint=work_dirs/famt_mae_vit-b_in1k/epoch_400.pth
# ----------------------------------------------------------------------------
# PLACEHOLDER: the pre-training checkpoint to evaluate (its `backbone.*` weights
# are loaded by StrictPretrained: every key must fit, or training stops).
# Override with --cfg-options model.backbone.init_cfg.checkpoint=PATH
pretrained = 'work_dirs/famt_mae_vit-b_in1k/epoch_400.pth'
# ----------------------------------------------------------------------------
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '_base_/models/vit-base-p16_finetune.py',
    '_base_/schedules/adamw_coslr-100e_finetune.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = dict(batch_size=128)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=100))
randomness = dict(seed=0, diff_rank_seed=True)
