# mmpretrain's MAE with a micro ViT for 32 x 32 inputs (8 x 8 patches of 4 px), sized for the
# CPU probe experiment (docs/evaluation.md): encoder 64-d x 4 blocks x 4 heads, decoder 64-d x
# 1 block x 4 heads.
model = dict(
    type='MAE',
    backbone=dict(
        type='MAEViT',
        arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256),
        img_size=32,
        patch_size=4,
        mask_ratio=0.75),
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=64,
        patch_size=4,
        in_chans=3,
        embed_dim=64,
        decoder_embed_dim=64,
        decoder_depth=1,
        decoder_num_heads=4,
        mlp_ratio=4.,
    ),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=4,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    init_cfg=[
        dict(type='Xavier', layer='Linear', distribution='uniform'),
        dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0)
    ])
