# Baseline: mmpretrain's MFF ViT-B/16, 300 epochs on ImageNet-1K, 8 x 512: its
# mff_vit-base-p16_8xb512-amp-coslr-300e_in1k recipe as it is, plus famt_mm's
# checkpoint-loading fix (torch >= 2.6 with mmengine 0.10.7).
#   bash tools/dist_train.sh configs/mff_vit-b-p16_in1k.py 8
_base_ = 'mmpretrain::mff/mff_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
