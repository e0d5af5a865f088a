# MAE linear probe on ViT-S/16 (mmpretrain arch 'deit-small': 384-d, 12 blocks,
# 6 heads): the whole encoder frozen, CLS token after the final norm,
# BatchNorm without affine parameters, then a linear classifier.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        frozen_stages=12,
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(type='StrictPretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=384),
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=10,
        in_channels=384,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

# StrictPretrained loads the backbone before the Runner's init_weights (famt_mm.transfer).
custom_hooks = [dict(type='StrictPretrainedHook')]
