# Baseline: mmpretrain's CAE (BEiT-style ViT-B/16, DALL-E tokenizer), 300 epochs on
# ImageNet-1K, 8 x 256: its cae_beit-base-p16_8xb256-amp-coslr-300e_in1k recipe as it is.
#   bash tools/dist_train.sh configs/cae_beit-base-p16_in1k.py 8
_base_ = 'mmpretrain::cae/cae_beit-base-p16_8xb256-amp-coslr-300e_in1k.py'
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
