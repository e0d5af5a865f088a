# Plain SimMIM with a ViT-B/16 at 224 px, from mmpretrain's parts: its SimMIM, a mask-token
# ViT (SimMIMViT = mmpretrain's MaskFeatViT: learned absolute position embeddings, CLS),
# SimMIMLinearDecoder (1x1 conv + PixelShuffle) and SimMIMHead with an L1 loss on the
# masked pixels. mmpretrain's own SimMIM configs are Swin-only.
model = dict(
    type='SimMIM',
    backbone=dict(type='SimMIMViT', arch='b', img_size=224, patch_size=16, drop_path_rate=0.1),
    neck=dict(type='SimMIMLinearDecoder', in_channels=768, encoder_stride=16),
    head=dict(
        type='SimMIMHead',
        patch_size=16,
        loss=dict(type='PixelReconstructionLoss', criterion='L1', channel=3)))
