# Baseline: mmpretrain's MILAN ViT-B/16, 400 epochs on ImageNet-1K, 16 x 256: its
# milan_vit-base-p16_16xb256-amp-coslr-400e_in1k recipe (pretrained CLIP ViT-B/16 teacher,
# CLIP-importance masking of .75) with one fix: mmpretrain 1.2's recipe leaves the decoder's
# embed_dim at its default 1024, which cannot take ViT-B's 768-d tokens (a shape error at the
# first step).
#   bash tools/dist_train.sh configs/milan_vit-b-p16_in1k.py 16
_base_ = 'mmpretrain::milan/milan_vit-base-p16_16xb256-amp-coslr-400e_in1k.py'
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
model = dict(neck=dict(embed_dim=768))
