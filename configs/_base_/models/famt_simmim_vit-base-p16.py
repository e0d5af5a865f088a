# FAMT on the SimMIM ViT-B/16: masking decided on 32-px units (7 x 7 at 224 px, 2 x 2
# patches each), mask .44 / throw .26 of the units: int(49 * .44) = 21 masked,
# int(49 * .70) - 21 = 13 thrown, 15 visible units (84 / 52 / 60 patches; the public AMT
# code rounds up: 22 / 13 / 14). Random phase: SimMIM's mask ratio 0.6 of the units
# (int(49 * .6) = 29 units; mmpretrain's SimMIMMaskGenerator rounds up to 30).
# Same parameters, names and shapes as the plain model.
_base_ = ['simmim_vit-base-p16.py']
model = dict(
    type='FAMTSimMIM',
    mask_patch_size=32,
    backbone=dict(type='FAMTSimMIMViT'),
    neck=dict(type='FAMTSimMIMLinearDecoder'),
    head=dict(type='FAMTSimMIMHead'),
    mask_generator=dict(
        type='FAMTMaskGenerator',
        mask_ratio=0.44,
        throw_ratio=0.26,
        random_mask_ratio=0.6,
        terms=('attention', 'frequency'),  # names in famt_mm/models/weight_terms.py
        combine='product',
        term_args=dict(frequency=dict(cutoff=0.15)),
        bank_dtype='float16'))
