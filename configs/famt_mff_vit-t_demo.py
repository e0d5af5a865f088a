# FAMT MFF demo: the FAMT MAE demo (tiny ViT on the embedded SyntheticObjects dataset; random
# masking for 2 epochs, then FAMT mask .45 / throw .40 with weight refreshes before epochs 3
# and 5, pictures on) with mmpretrain's MFF encoder: the outputs of blocks 1, 3, 5 and 6
# (1-based) fused with learned weights (logged as weight_0 ... weight_3).
#   python tools/train.py configs/famt_mff_vit-t_demo.py --work-dir work_dirs/famt_mff_demo
_base_ = ['famt_mae_vit-t_demo.py']

model = dict(type='FAMTMFF', backbone=dict(type='FAMTMFFViT', out_indices=[0, 2, 4, 5]))
