# CIFAR100 for linear probing / fine-tuning at 224 px: the CIFAR-10 settings with
# CIFAR-100's data (mmpretrain's CIFAR100 reads the python-pickle files of the
# official archive from data/cifar100/).
_base_ = ['cifar10_bs128_224.py']
dataset_type = 'CIFAR100'
data_root = 'data/cifar100/'
data_preprocessor = dict(num_classes=100)
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
