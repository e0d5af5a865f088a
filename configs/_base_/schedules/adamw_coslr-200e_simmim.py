# The AMT code's SimMIM ViT-B schedule: 200 epochs, AdamW base lr 1e-4 with SimMIM's linear
# rule (lr = base lr x total batch / 512; 2048 = 8 GPUs x 256 here), betas (0.9, 0.999),
# wd 0.05, 10 warm-up epochs from 5e-7, then cosine to SimMIM's min lr 5e-6 (same scaling),
# gradient clipping at 5 and AMP as SimMIM's recipes.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4 * 2048 / 512, betas=(0.9, 0.999), eps=1e-8,
                   weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        custom_keys={
            'ln': dict(decay_mult=0.0),
            'bias': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=5e-7 / 1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=190, eta_min=5e-6 * 2048 / 512, by_epoch=True,
         begin=10, end=200, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
auto_scale_lr = dict(base_batch_size=2048)
