# MAE's linear-probe schedule (mmpretrain configs/mae/benchmarks/
# vit-base-p16_8xb2048-linear-coslr-90e_in1k.py): LARS, momentum 0.9, no weight
# decay, lr 6.4 at a total batch of 16384 (lr = 0.1 x batch / 256), 10 linear
# warm-up epochs then cosine to 0, 90 epochs, AMP (plain fp32 on a CPU).
# Leaf configs with another batch set `lr` and `auto_scale_lr.base_batch_size`
# together, so `--auto-scale-lr` keeps lr = 0.1 x batch / 256.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='LARS', lr=6.4, weight_decay=0.0, momentum=0.9))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=80, by_epoch=True, begin=10, end=90,
         eta_min=0.0, convert_to_iter_based=True),
]

train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# mmpretrain's benchmark inherits base_batch_size=1024 from its Swin schedule,
# which would scale 6.4 as if it were meant for 1024 images: this is the batch
# the lr above belongs to.
auto_scale_lr = dict(base_batch_size=16384)
