# FAMT EVA ViT-B/16 (MAE style), 400 epochs on ImageNet-1K, 16 x 256: mmpretrain's own EVA
# recipe (model with the released CLIP ViT-B/16 as the teacher, data, schedule, runtime) with
# FAMT masking (mask .45 / throw .40 of the 196 patches) from epoch 40, weights refreshed every
# 40 epochs. The teacher sees whole images; the loss is over the masked patches.
#   bash tools/dist_train.sh configs/famt_eva_vit-b-p16_in1k.py 16
_base_ = 'mmpretrain::eva/eva-mae-style_vit-base-p16_16xb256-coslr-400e_in1k.py'
from famt_mm.recipe import famt_model, famt_train_dataloader  # noqa: E402 (text config)

custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
model = famt_model('EVA', mask_ratio=0.45, throw_ratio=0.40)  # FAMT types, FAMTMaskGenerator
train_dataloader = famt_train_dataloader(_base_.train_dataloader)  # noqa: F821
train_pipeline = train_dataloader['dataset']['pipeline']
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=256, log_interval=100)
]
