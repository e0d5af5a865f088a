# FAMT MILAN ViT-B/16, 400 epochs on ImageNet-1K, 16 x 256: mmpretrain's own MILAN recipe
# (inherited as it is: the pretrained CLIP ViT-B/16 teacher as target, prompting decoder,
# cosine loss, data, schedule, runtime). FAMT's split takes the place of MILAN's CLIP-importance
# masking: random masking of .75 (the recipe's ratio) until epoch 40, then FAMT masking (.45)
# and throwing (.40) of the 196 patches, weights refreshed every 40 epochs.
#   bash tools/dist_train.sh configs/famt_milan_vit-b-p16_in1k.py 16
_base_ = 'mmpretrain::milan/milan_vit-base-p16_16xb256-amp-coslr-400e_in1k.py'
from famt_mm.recipe import famt_model, famt_train_dataloader  # noqa: E402 (text config)

custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
model = famt_model('MILAN', mask_ratio=0.45, throw_ratio=0.40, random_mask_ratio=0.75)
# mmpretrain 1.2's recipe leaves the decoder's embed_dim at its default 1024, which cannot take
# ViT-B's 768-d tokens (a shape error at the first step, plain MILAN too)
model['neck']['embed_dim'] = 768
train_dataloader = famt_train_dataloader(_base_.train_dataloader)  # noqa: F821
train_pipeline = train_dataloader['dataset']['pipeline']
custom_hooks = [
    dict(type='FAMTWeightHook', start_epoch=40, interval=40, batch_size=256, log_interval=100)
]
