# MAE linear probe on ViT-B/16: the whole encoder frozen (12 of 12 blocks, patch
# and position embedding, final norm), CLS token after the final norm,
# BatchNorm without affine parameters, then a linear classifier.
# The leaf config sets the checkpoint of `init_cfg` (StrictPretrained: every
# `backbone.*` weight of the pre-training checkpoint must fit, or it stops).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        frozen_stages=12,
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(type='StrictPretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=768),
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

# StrictPretrained loads the backbone before the Runner's init_weights (famt_mm.transfer).
custom_hooks = [dict(type='StrictPretrainedHook')]
