# FAMT MAE with the tiny ViT of the demo (64 x 64 inputs, 8 x 8 patches of 8 px).
_base_ = ['mae_vit-tiny-p8.py']
model = dict(
    type='FAMTMAE',
    backbone=dict(type='FAMTViT'),
    neck=dict(type='FAMTPretrainDecoder'),
    head=dict(type='FAMTPretrainHead'),
    mask_generator=dict(
        type='FAMTMaskGenerator',
        mask_ratio=0.45,
        throw_ratio=0.40,
        random_mask_ratio=0.75,
        terms=('attention', 'frequency'),
        combine='product',
        term_args=dict(frequency=dict(cutoff=0.15))))
