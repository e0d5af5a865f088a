# FAMT MaskFeat ViT-B/16, 300 epochs on ImageNet-1K, 8 x 256: mmpretrain's own MaskFeat
# recipe (inherited as it is: HOG target, neck, loss, data, AMP schedule, runtime) with
# random masking of .4 of the 196 patches (the recipe's 78) until epoch 30 (the end of its
# warm-up), then FAMT masking (.45) and throwing (.40), weights refreshed every 30 epochs.
#   bash tools/dist_train.sh configs/famt_maskfeat_vit-b-p16_in1k.py 8
_base_ = 'mmpretrain::maskfeat/maskfeat_vit-base-p16_8xb256-amp-coslr-300e_in1k.py'
from famt_mm.recipe import famt_model, famt_train_dataloader  # noqa: E402 (text config)

custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
model = famt_model('MaskFeat', mask_ratio=0.45, throw_ratio=0.40, random_mask_ratio=0.4)
train_dataloader = famt_train_dataloader(_base_.train_dataloader)  # noqa: F821
train_pipeline = train_dataloader['dataset']['pipeline']
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=30, interval=30, batch_size=256, log_interval=100)
]
