# The FAMT demo with a third weight term: the per-patch image-gradient energy
# (docs/method.md section 1.3), multiplied with attention and frequency.
#   python tools/train.py configs/famt_mae_vit-t_demo_gradient.py --work-dir work_dirs/famt_demo_gradient
_base_ = ['famt_mae_vit-t_demo.py']

model = dict(mask_generator=dict(terms=('attention', 'frequency', 'gradient')))
