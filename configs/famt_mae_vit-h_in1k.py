# FAMT ViT-H/14, 1600 epochs on ImageNet-1K, 8 x 512: mmpretrain's own MAE recipe
# (inherited as it is: model, data, schedule, runtime) with FAMT masking (mask .45 /
# throw .40 of the 256 patches) from epoch 40, weights refreshed every 40 epochs.
# Any other MAE recipe of mmpretrain works the same way (README, "Any mmpretrain MAE recipe").
#   bash tools/dist_train.sh configs/famt_mae_vit-h_in1k.py 8
_base_ = 'mmpretrain::mae/mae_vit-huge-p14_8xb512-amp-coslr-1600e_in1k.py'
from famt_mm.recipe import famt_model, famt_train_dataloader  # noqa: E402 (text config)

custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
model = famt_model(mask_ratio=0.45, throw_ratio=0.40)  # FAMT types, FAMTMaskGenerator
train_dataloader = famt_train_dataloader(_base_.train_dataloader)  # noqa: F821
train_pipeline = train_dataloader['dataset']['pipeline']
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=128, log_interval=100)
]
