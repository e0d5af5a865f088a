# Mask R-CNN with a plain ViT-B/16 and a simple feature pyramid (ViTDet).
# mmdet's Mask R-CNN with the backbone and neck replaced by famt_mm.transfer.vitdet,
# LayerNorm in the neck and heads, 2-conv RPN and 4conv-1fc box head, as in ViTDet.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['famt_mm', 'famt_mm.transfer.vitdet'], allow_failed_imports=False)

input_size = (1024, 1024)  # = the LSJ crop of the dataset config
norm_cfg = dict(type='mmpretrain.LN2d', eps=1e-6)  # LayerNorm over channels of B x C x H x W
model = dict(
    # every batch padded to the full LSJ size: the ViT sees a fixed 64 x 64 patch grid
    data_preprocessor=dict(
        pad_size_divisor=32,
        batch_augments=[dict(type='BatchFixedSizePad', size=input_size, pad_mask=True)]),
    backbone=dict(
        _delete_=True,
        type='ViTDetBackbone',
        arch='base',
        img_size=input_size[0],
        patch_size=16,
        window_size=14,
        window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],  # global attention in 2, 5, 8, 11
        use_rel_pos=True,
        drop_path_rate=0.1,
        # a famt2target.py --target mmdet file: every pre-trained key must load; only the
        # relative position tables (not in MAE pre-training) start at zero
        init_cfg=dict(type='StrictPretrained', checkpoint='',
                      allowed_missing=['layers.*.attn.rel_pos_h', 'layers.*.attn.rel_pos_w'])),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),  # stride 16 -> strides 4, 8, 16, 32 (+ 64)
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

# StrictPretrained loads the backbone before the Runner's init_weights (famt_mm.transfer).
custom_hooks = [dict(type='StrictPretrainedHook')]
