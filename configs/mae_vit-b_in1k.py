# Baseline: mmpretrain's MAE ViT-B/16, 400 epochs on ImageNet-1K, 8 x 512: its
# mae_vit-base-p16_8xb512-amp-coslr-400e_in1k recipe as it is, plus famt_mm's
# checkpoint-loading fix (the recipe resumes; torch >= 2.6 with mmengine 0.10.7).
#   bash tools/dist_train.sh configs/mae_vit-b_in1k.py 8
_base_ = 'mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
