# FAMT SimMIM with the demo's tiny ViT: 16-px mask units (2 x 2 patches, a 4 x 4 unit grid),
# mask .44 / throw .26 of the 16 units (7 masked, 4 thrown, 5 visible); random phase 0.6.
_base_ = ['simmim_vit-tiny-p8.py']
model = dict(
    type='FAMTSimMIM',
    mask_patch_size=16,
    backbone=dict(type='FAMTSimMIMViT'),
    neck=dict(type='FAMTSimMIMLinearDecoder'),
    head=dict(type='FAMTSimMIMHead'),
    mask_generator=dict(
        type='FAMTMaskGenerator',
        mask_ratio=0.44,
        throw_ratio=0.26,
        random_mask_ratio=0.6,
        terms=('attention', 'frequency'),
        combine='product',
        term_args=dict(frequency=dict(cutoff=0.15))))
