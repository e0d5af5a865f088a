# mmpretrain's MAE with a micro ViT for 32 x 32 inputs (8 x 8 patches of 4 px), sized for the
# CPU probe experiment (docs/evaluation.md): the demo's tiny model shrunk to an encoder 64-d x
# 4 blocks x 4 heads and a decoder 64-d x 1 block x 4 heads.
_base_ = ['mae_vit-tiny-p8.py']
model = dict(
    backbone=dict(
        arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256),
        img_size=32,
        patch_size=4),
    neck=dict(num_patches=64, patch_size=4, embed_dim=64, decoder_embed_dim=64,
              decoder_depth=1),
    head=dict(patch_size=4))
