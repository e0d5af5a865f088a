# FAMT on mmpretrain's MAE ViT-B/16: mask .45 / throw .40 (L = 196: 88 masked,
# 78 thrown, 30 visible), product of attention and frequency terms.
_base_ = ['mae_vit-base-p16.py']
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
        terms=('attention', 'frequency'),  # names in famt_mm/models/weight_terms.py
        combine='product',
        term_args=dict(frequency=dict(cutoff=0.15)),
        bank_dtype='float16'))
