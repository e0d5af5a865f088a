# MAE with ViT-S/16 (mmpretrain arch 'deit-small': 384-d, 12 blocks, 6 heads;
# NOT arch 's', a 768-d 8-block model), decoder 128-d x 8 blocks x 16 heads:
# the public FAMT repository's small-dataset model.
model = dict(
    type='MAE',
    backbone=dict(type='MAEViT', arch='deit-small', patch_size=16, mask_ratio=0.75),
    neck=dict(
        type='MAEPretrainDecoder',
        patch_size=16,
        in_chans=3,
        embed_dim=384,
        decoder_embed_dim=128,
        decoder_depth=8,
        decoder_num_heads=16,
        mlp_ratio=4.,
    ),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=16,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
