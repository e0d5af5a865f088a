# FAMT BEiT v2 ViT-B/16, 300 epochs on ImageNet-1K, 8 x 256: mmpretrain's own BEiT v2 recipe
# (inherited as it is: model, VQ-KD tokenizer weights, data, schedule, runtime) with FAMT
# masking (mask .45 / throw .40 of the 196 patches) from epoch 40, weights refreshed every
# 40 epochs. Until then uniform random masking of 75 patches (BEiT's count; FAMT's masking
# replaces BEiT's block-wise one in both phases).
#   bash tools/dist_train.sh configs/famt_beitv2_vit-b-p16_in1k.py 8
_base_ = 'mmpretrain::beitv2/beitv2_beit-base-p16_8xb256-amp-coslr-300e_in1k.py'
from famt_mm.recipe import famt_model, famt_train_dataloader  # noqa: E402 (text config)

custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
# FAMTBEiT's types and FAMTMaskGenerator, merged onto mmpretrain's BEiT
model = famt_model('BEiT', mask_ratio=0.45, throw_ratio=0.40,
                   random_mask_ratio=0.383)  # int(196 * .383) = 75, BEiT's count
# the refresh hands one view: FAMT's two-view preprocessor normalises it as the first
data_preprocessor = dict(type='FAMTTwoNormDataPreprocessor')
# the two-view crop that records its box; BEiTMaskGenerator dropped (the model draws the sets)
train_dataloader = famt_train_dataloader(_base_.train_dataloader)  # noqa: F821
train_pipeline = train_dataloader['dataset']['pipeline']
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=256, log_interval=100)
]
resume = True  # auto resume from the latest checkpoint in the work dir
