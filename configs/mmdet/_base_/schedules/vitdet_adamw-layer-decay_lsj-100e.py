# ViTDet's ViT-B schedule: 100 epochs of COCO at 64 images per iteration
# (184375 iterations), AdamW with layer-wise lr decay 0.7, 250 warm-up iterations,
# lr x 0.1 at epochs 88 and 96. AMP (falls back to fp32 on a machine without CUDA).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='ViTLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.7, no_decay_names=('pos_embed', )))

max_iters = 184375
val_interval = 5000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[163889, 177546], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval,
                 dynamic_intervals=[(max_iters // val_interval * val_interval + 1, max_iters)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# --auto-scale-lr scales the lr when the total batch is not 64
auto_scale_lr = dict(enable=False, base_batch_size=64)
