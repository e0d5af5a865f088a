# FAMT of the CPU probe experiment (docs/evaluation.md): the micro ViT on 32 x 32
# SyntheticObjects; random masking for 6 epochs, then FAMT (mask .45 / throw .40), weights
# refreshed every 6 epochs. Same data, optimiser and schedule as mae_vit-micro-p4_probe.py.
#   python tools/train.py configs/famt_mae_vit-micro-p4_probe.py --work-dir work_dirs/famt_probe
_base_ = ['mae_vit-micro-p4_probe.py']
model = dict(
    type='FAMTMAE',
    backbone=dict(type='FAMTViT'),
    neck=dict(type='FAMTPretrainDecoder'),
    head=dict(type='FAMTPretrainHead'),
    mask_generator=dict(
        type='FAMTMaskGenerator',
        mask_ratio=0.45,
        throw_ratio=0.40,
        random_mask_ratio=0.75,
        terms=('attention', 'frequency'),
        combine='product',
        term_args=dict(frequency=dict(cutoff=0.15))))
custom_hooks = [dict(type='FAMTWeightHook', start_epoch=6, interval=6)]
