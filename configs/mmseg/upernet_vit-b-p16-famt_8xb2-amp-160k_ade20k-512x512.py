# ADE20K semantic segmentation: UperNet, ViT-B/16 from a FAMT pre-training,
# 512 x 512 crops, 16 images per iteration (8 GPUs x 2), 160k iterations,
# layer-wise lr decay, AMP (MAE ViT-B reference: 48.1 mIoU). See docs/transfer.md.
#
#   python tools/model_converters/famt2target.py EPOCH_400.pth --target mmseg \
#       checkpoints/famt_vit-b-p16_mmseg.pth
#   bash tools/dist_train.sh \
#       configs/mmseg/upernet_vit-b-p16-famt_8xb2-amp-160k_ade20k-512x512.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/famt_vit-b-p16_mmseg.pth
_base_ = [
    '_base_/models/upernet_mae-vit-base-p16.py',
    'mmseg::_base_/datasets/ade20k.py',
    '_base_/schedules/adamw-layer-decay_160k.py',
    'mmseg::_base_/default_runtime.py',
]

# The converted backbone (tools/model_converters/famt2target.py --target mmseg output).
pretrained = 'checkpoints/famt_vit-b-p16_mmseg.pth'
model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
