# Baseline: mmpretrain's EVA ViT-B/16 (MAE style, CLIP ViT-B/16 teacher), 400 epochs on
# ImageNet-1K, 16 x 256: its eva-mae-style_vit-base-p16_16xb256-coslr-400e_in1k recipe as it
# is, plus famt_mm's checkpoint-loading fix (the recipe resumes; torch >= 2.6 with mmengine
# 0.10.7).
#   bash tools/dist_train.sh configs/eva_vit-b-p16_in1k.py 16
_base_ = 'mmpretrain::eva/eva-mae-style_vit-base-p16_16xb256-coslr-400e_in1k.py'
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
