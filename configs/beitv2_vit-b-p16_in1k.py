# Baseline: mmpretrain's BEiT v2 ViT-B/16, 300 epochs on ImageNet-1K, 8 x 256: its
# beitv2_beit-base-p16_8xb256-amp-coslr-300e_in1k recipe as it is (VQ-KD tokenizer, block-wise
# masking of 75 patches), plus famt_mm's checkpoint-loading fix.
#   bash tools/dist_train.sh configs/beitv2_vit-b-p16_in1k.py 8
_base_ = 'mmpretrain::beitv2/beitv2_beit-base-p16_8xb256-amp-coslr-300e_in1k.py'
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
