# dataset settings of the CPU probe experiment (docs/evaluation.md): 32 x 32 SyntheticObjects,
# 4 shape classes (disc, square, triangle, ring), large flat-coloured objects (diameter 50-90%
# of the side) on flat backgrounds, rendered once and kept in memory.
_base_ = ['synthetic_objects_mae.py']
train_pipeline = [
    dict(type='FAMTRandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs', meta_keys=('sample_idx', 'img_path', 'famt_crop', 'flip',
                                       'flip_direction')),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(num_samples=1000, img_size=32, num_classes=4, object_scale=(0.5, 0.9),
                 texture=False,
                 cache=True, pipeline=train_pipeline))
