# FAMT on the ViT-S/16 MAE of the small-dataset recipe.
_base_ = ['mae_vit-small-p16.py']
model = dict(
    type='FAMTMAE',
    backbone=dict(type='FAMTViT'),
    neck=dict(type='FAMTPretrainDecoder'),
    head=dict(type='FAMTPretrainHead'),
    mask_generator=dict(type='FAMTMaskGenerator', mask_ratio=0.45, throw_ratio=0.40,
                        random_mask_ratio=0.75, terms=('attention', 'frequency'),
                        combine='product', term_args=dict(frequency=dict(cutoff=0.15))))
