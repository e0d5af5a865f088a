# Plain SimMIM with the demo's tiny ViT (64 x 64 inputs, 8 x 8 patches of 8 px; 192-d x 6
# blocks x 3 heads), mask-token ViT + linear decoder + L1 on the masked pixels.
model = dict(
    type='SimMIM',
    backbone=dict(
        type='SimMIMViT',
        arch=dict(embed_dims=192, num_layers=6, num_heads=3, feedforward_channels=768),
        img_size=64,
        patch_size=8),
    neck=dict(type='SimMIMLinearDecoder', in_channels=192, encoder_stride=8),
    head=dict(
        type='SimMIMHead',
        patch_size=8,
        loss=dict(type='PixelReconstructionLoss', criterion='L1', channel=3)))
