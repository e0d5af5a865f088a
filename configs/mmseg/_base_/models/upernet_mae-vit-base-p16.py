# UperNet on a plain ViT-B/16 (mmseg's MAE backbone: relative position biases,
# layer scales), features of blocks 4, 6, 8, 12 turned into strides 4..32 by
# Feature2Pyramid. The MAE fine-tuning recipe of mmseg's configs/mae.
_base_ = ['mmseg::_base_/models/upernet_mae.py']
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)

input_size = (512, 512)  # = the crop of the dataset config
model = dict(
    data_preprocessor=dict(size=input_size),
    backbone=dict(
        type='MAE',
        img_size=input_size,  # mmseg's MAE adds pos_embed without resizing: = the crop
        patch_size=16,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        mlp_ratio=4,
        init_values=1.0,
        drop_path_rate=0.1,
        out_indices=[3, 5, 7, 11],
        # a famt2target.py --target mmseg file: every pre-trained key must load (pos_embed is
        # resized to the crop's grid); layer scales and relative position tables
        # are not in MAE pre-training and keep their init (1.0 and zeros)
        init_cfg=dict(type='StrictPretrained', checkpoint='',
                      allowed_missing=['layers.*.gamma_1', 'layers.*.gamma_2',
                                       'layers.*.attn.relative_position_bias_table',
                                       'layers.*.attn.relative_position_index'])),
    neck=dict(embed_dim=768, rescales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[768, 768, 768, 768], num_classes=150, channels=768),
    auxiliary_head=dict(in_channels=768, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=input_size, stride=(256, 256)))

# StrictPretrained loads the backbone before the Runner's init_weights (famt_mm.transfer).
custom_hooks = [dict(type='StrictPretrainedHook')]
