# Linear probe of a FAMT (or MAE) ViT-S/16 pre-training checkpoint on CIFAR-100: the
# CIFAR-10 recipe (vit-small-p16_8xb128-linear-coslr-90e_cifar10.py) with CIFAR-100's data and 100 classes.
#   bash tools/dist_train.sh configs/eval/vit-small-p16_8xb128-linear-coslr-90e_cifar100.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/famt_mae_vit-s_cifar100/epoch_400.pth
# ----------------------------------------------------------------------------
# Override with --cfg-options model.backbone.init_cfg.checkpoint=PATH
pretrained = 'work_dirs/famt_mae_vit-s_cifar100/epoch_400.pth'
# ----------------------------------------------------------------------------
_base_ = ['vit-small-p16_8xb128-linear-coslr-90e_cifar10.py']

# mmpretrain's CIFAR100 reads the official python-pickle archive from data/cifar100/.
cifar100 = dict(type='CIFAR100', data_root='data/cifar100/')
train_dataloader = dict(dataset=cifar100)
val_dataloader = dict(dataset=cifar100)
test_dataloader = val_dataloader
data_preprocessor = dict(num_classes=100)

model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)), head=dict(num_classes=100))
