# COCO instance segmentation: Mask R-CNN, ViT-B/16 from a FAMT pre-training,
# simple feature pyramid, LSJ 1024, 100 epochs (ViTDet recipe; MAE ViT-B
# reference: 51.6 box AP / 45.7 mask AP). See docs/transfer.md.
#
#   python tools/model_converters/famt2target.py EPOCH_400.pth --target mmdet \
#       checkpoints/famt_vit-b-p16_mmdet.pth
#   bash tools/dist_train.sh configs/mmdet/mask-rcnn_vit-b-p16-famt_simple-fpn_lsj-100e_coco.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/famt_vit-b-p16_mmdet.pth
_base_ = [
    '_base_/models/mask-rcnn_vitdet_vit-base-p16.py',
    '_base_/datasets/coco_instance_lsj-1024.py',
    '_base_/schedules/vitdet_adamw-layer-decay_lsj-100e.py',
    'mmdet::_base_/default_runtime.py',
]

# The converted backbone (tools/model_converters/famt2target.py --target mmdet output).
pretrained = 'checkpoints/famt_vit-b-p16_mmdet.pth'
model = dict(backbone=dict(init_cfg=dict(checkpoint=pretrained)))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, save_last=True,
                    max_keep_ckpts=5))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
