# dataset settings of the CPU probe experiment (docs/evaluation.md): 32 x 32 SyntheticObjects,
# 4 shape classes (disc, square, triangle, ring), large flat-coloured objects (diameter 50-90%
# of the side) on flat backgrounds, rendered once and kept in memory.
# MAE and FAMT probe runs share this FAMT pipeline (MAE ignores the recorded box): same crops.
_base_ = ['synthetic_objects_mae.py']
from famt_mm.recipe import famt_pipeline  # noqa: E402 (text config: _base_ first)

train_pipeline = famt_pipeline([
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
])
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(num_samples=1000, img_size=32, num_classes=4, object_scale=(0.5, 0.9),
                 texture=False,
                 cache=True, pipeline=train_pipeline))
