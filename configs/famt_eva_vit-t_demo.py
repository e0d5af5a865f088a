# FAMT EVA demo: the FAMT MAE demo (tiny ViT on the embedded SyntheticObjects dataset; random
# masking for 2 epochs, then FAMT mask .45 / throw .40 with weight refreshes before epochs 3
# and 5, pictures on: masks and weights, no reconstruction as the target is not pixels) with
# mmpretrain's EVA target: a frozen CLIP's features of the masked patches, cosine loss. The
# CLIP here is tiny and random (RandomCLIPGenerator: nothing to download); the ImageNet
# config uses the released CLIP ViT-B/16 as mmpretrain's recipe does.
#   python tools/train.py configs/famt_eva_vit-t_demo.py --work-dir work_dirs/famt_eva_demo
_base_ = ['famt_mae_vit-t_demo.py']

init = [dict(type='Xavier', distribution='uniform', layer='Linear'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)]
model = dict(
    type='FAMTEVA',
    backbone=dict(init_cfg=init),
    neck=dict(predict_feature_dim=64, init_cfg=init),
    head=dict(_delete_=True, type='MIMHead',
              loss=dict(type='CosineSimilarityLoss', shift_factor=2.0, scale_factor=2.0)),
    target_generator=dict(type='RandomCLIPGenerator', img_size=64, patch_size=8, width=64,
                          num_layers=2, out_dims=64),
    init_cfg=None)  # as EVA's recipe: the model-wide init would re-initialise the teacher
