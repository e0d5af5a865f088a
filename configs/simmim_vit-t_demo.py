# Baseline: plain SimMIM (random masking of 0.6 of the 16-px units) with a tiny ViT on the
# embedded SyntheticObjects dataset (64 x 64). Runs on a CPU in minutes.
#   python tools/train.py configs/simmim_vit-t_demo.py --work-dir work_dirs/simmim_demo
_base_ = [
    '_base_/models/simmim_vit-tiny-p8.py',
    '_base_/datasets/synthetic_objects_simmim.py',
    '_base_/schedules/adamw_mae_demo.py',
    '_base_/default_runtime.py',
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))
randomness = dict(seed=0, diff_rank_seed=True)
