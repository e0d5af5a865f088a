# MAE's ADE20K fine-tuning schedule: 160k iterations, AdamW, layer-wise lr decay
# 0.65, 1500 linear warm-up iterations then poly (power 1) decay; AMP.
# (mmseg's configs/mae sets `fp16=dict(...)`, which mmseg 1.x ignores: AMP is
# the AmpOptimWrapper here; it falls back to fp32 on a machine without CUDA.)
_base_ = ['mmseg::_base_/schedules/schedule_160k.py']

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.65,
                       no_decay_names=('pos_embed', 'cls_token',
                                       'relative_position_bias_table')))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1500, end=160000),
]
