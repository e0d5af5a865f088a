# MAE fine-tuning of ViT-B/16: every block trained (layer-wise lr decay in the
# schedule), drop path 0.1, average of the patch tokens -> LayerNorm -> linear
# head, label smoothing 0.1, Mixup 0.8 / CutMix 1.0.
# As mmpretrain's MAE recipe, the pre-trained final norm is not used
# (final_norm=False): StrictPretrained leaves the checkpoint's `ln1.*` out by
# name (ignored_keys) and lets only the new pooled-feature norm `ln2` keep its
# own initialisation (allowed_missing); any other mismatch stops the run.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        final_norm=False,
        init_cfg=dict(type='StrictPretrained', checkpoint=None, prefix='backbone.',
                      ignored_keys=('ln1.',), allowed_missing=('ln2.',))),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

# StrictPretrained loads the backbone before the Runner's init_weights (famt_mm.transfer).
custom_hooks = [dict(type='StrictPretrainedHook')]
