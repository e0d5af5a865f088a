# FAMT pre-training on your own images: every image file found (recursively) under
# data_root, no labels, no annotation file. ViT-S/16 at 224 px with the
# small-dataset recipe of famt_mae_vit-s_tiny-imagenet.py (400 epochs, 8 x 512,
# FAMT from epoch 40, weights refreshed every 40 epochs).
#   bash tools/dist_train.sh configs/famt_mae_vit-s_custom-folder.py 8 \
#       --cfg-options train_dataloader.dataset.data_root=data/my_images
# Change here (or with --cfg-options): data_root; max_epochs together with the
# FAMTWeightHook's start_epoch / interval (about 10% of the epochs each);
# batch_size per GPU (add --auto-scale-lr to scale the lr from 4096 images).
_base_ = ['famt_mae_vit-s_tiny-imagenet.py']

data_root = 'data/my_images/'
train_dataloader = dict(
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='',
        ann_file='',
        with_label=False))  # unlabelled: every image under data_root
