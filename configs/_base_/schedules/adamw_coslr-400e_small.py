# The public FAMT repository's small-dataset schedule: effective batch 4096
# (8 x 512), blr 1.5e-4 (lr = blr x 4096 / 256), AdamW (0.9, 0.95), wd 0.05,
# 40 warm-up epochs, cosine to 400 epochs, AMP on GPU.
_base_ = ['adamw_coslr-400e_mae.py']
