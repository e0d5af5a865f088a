# FAMT CAE, BEiT-style ViT-B/16, 300 epochs on ImageNet-1K, 8 x 256: mmpretrain's own CAE
# recipe (inherited as it is: model, the real DALL-E tokenizer, two-view data, schedule,
# runtime) with FAMT masking (mask .45 / throw .40 of the 196 patches: 88 masked, 78 thrown,
# 30 visible) from epoch 30, weights refreshed every 30 epochs. Before that, random masking
# of 75 patches (the recipe's count; FAMT draws them uniformly instead of in blocks).
#   bash tools/dist_train.sh configs/famt_cae_beit-base-p16_in1k.py 8
_base_ = 'mmpretrain::cae/cae_beit-base-p16_8xb256-amp-coslr-300e_in1k.py'
from famt_mm.recipe import famt_model, famt_train_dataloader  # noqa: E402 (text config)

custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
# FAMTCAE's types and the generator, merged onto the recipe's model; random phase: 75 masked
model = famt_model('CAE', mask_ratio=0.45, throw_ratio=0.40, random_mask_ratio=0.383)
# the recipe's two-view normalisation, also for the refresh's one-view batches
data_preprocessor = dict(type='FAMTTwoNormDataPreprocessor')
# the FAMT pipeline (the two-picture crop records its box; BEiTMaskGenerator dropped)
train_dataloader = famt_train_dataloader(_base_.train_dataloader)  # noqa: F821
train_pipeline = train_dataloader['dataset']['pipeline']
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=30, interval=30, batch_size=256, log_interval=100)
]
