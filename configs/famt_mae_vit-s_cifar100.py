# FAMT, ViT-S/16 at 224 px, 400 epochs on CIFAR-100, 8 x 512: the
# CIFAR-10 recipe with CIFAR-100's data.
#   bash tools/dist_train.sh configs/famt_mae_vit-s_cifar100.py 8
_base_ = ['famt_mae_vit-s_cifar10.py']
train_dataloader = dict(dataset=dict(type='CIFAR100', data_root='data/cifar100/'))
