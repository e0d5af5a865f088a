"""Tiny COCO / ADE20K data, a FAMT checkpoint from a real (tiny) pre-training, and
the transfer configs shrunk to match it."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, tiny_cfg

# The pre-trained ViT: 32 px inputs, 8 px patches, 4 blocks (UperNet needs 4 levels).
TINY_ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
MMDET_CONFIG = osp.join(REPO, 'configs', 'mmdet',
                        'mask-rcnn_vit-b-p16-famt_simple-fpn_lsj-100e_coco.py')
MMSEG_CONFIG = osp.join(REPO, 'configs', 'mmseg',
                        'upernet_vit-b-p16-famt_8xb2-amp-160k_ade20k-512x512.py')


@pytest.fixture(scope='session')
def famt_checkpoint(tmp_path_factory):
    """2 epochs of FAMT pre-training (random masking, refresh, FAMT) of the tiny ViT."""
    from mmengine.runner import Runner
    work = tmp_path_factory.mktemp('famt_pretrain')
    cfg = tiny_cfg(work, max_epochs=2, start_epoch=1, interval=1)
    cfg.merge_from_dict({'model.backbone.arch': TINY_ARCH,
                         'train_dataloader.dataset.num_samples': 16})
    cfg.experiment_name = 'famt_transfer_pretrain'
    Runner.from_cfg(cfg).train()
    path = osp.join(str(work), 'epoch_2.pth')
    assert osp.isfile(path)
    return path


def _shape_image(rng, size):
    img = rng.integers(60, 120, size=(size, size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (5, 5), 0)


def _write_coco_split(root, split, num_images, rng, size=64):
    img_dir = osp.join(root, f'{split}2017')
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img = _shape_image(rng, size)
        for j in range(2):
            x0, y0 = (int(v) for v in rng.integers(2, size - 30, size=2))
            w, h = (int(v) for v in rng.integers(14, 28, size=2))
            color = [int(c) for c in rng.integers(150, 255, size=3)]
            if j == 0:  # rectangle
                poly = [x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]
            else:  # triangle
                poly = [x0, y0 + h, x0 + w // 2, y0, x0 + w, y0 + h]
            pts = np.array(poly, dtype=np.int32).reshape(-1, 2)
            cv2.fillPoly(img, [pts], color)
            xs, ys = pts[:, 0], pts[:, 1]
            bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min()),
                    int(ys.max() - ys.min())]
            area = float(cv2.contourArea(pts.astype(np.float32)))
            annotations.append(dict(id=len(annotations) + 1, image_id=i + 1,
                                    category_id=[1, 3][j], bbox=bbox, area=area,  # person, car
                                    segmentation=[[float(v) for v in poly]], iscrowd=0))
        name = f'{i:012d}.jpg'
        cv2.imwrite(osp.join(img_dir, name), img)
        images.append(dict(id=i + 1, file_name=name, width=size, height=size))
    from mmdet.datasets import CocoDataset  # all 80 classes, as a real COCO json
    categories = [dict(id=k + 1, name=n, supercategory='thing')
                  for k, n in enumerate(CocoDataset.METAINFO['classes'])]
    with open(osp.join(root, 'annotations', f'instances_{split}2017.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory):
    """COCO 2017 layout: train2017/, val2017/, annotations/instances_*.json (polygons)."""
    root = str(tmp_path_factory.mktemp('coco'))
    os.makedirs(osp.join(root, 'annotations'))
    rng = np.random.default_rng(0)
    _write_coco_split(root, 'train', 4, rng)
    _write_coco_split(root, 'val', 2, rng)
    return root + '/'


@pytest.fixture(scope='session')
def ade_root(tmp_path_factory):
    """ADEChallengeData2016 layout: images/{training,validation}/*.jpg and
    annotations/*/*.png (0 = 'other', ignored; 1..150 the classes)."""
    root = str(tmp_path_factory.mktemp('ade'))
    rng = np.random.default_rng(1)
    for split, n in (('training', 4), ('validation', 2)):
        os.makedirs(osp.join(root, 'images', split))
        os.makedirs(osp.join(root, 'annotations', split))
        for i in range(n):
            h, w = 48, 64
            img = _shape_image(rng, 64)[:h]
            label = np.full((h, w), 1, np.uint8)  # 'wall' everywhere ...
            label[:6] = 0  # ... a strip of 'other' (ignored)
            for cls in (3, 13):  # ... a 'floor' and a 'person' block
                x0, y0 = (int(v) for v in rng.integers(0, 36, size=2))
                color = int(rng.integers(160, 255))
                img[y0:y0 + 14, x0:x0 + 22] = color
                label[y0:y0 + 14, x0:x0 + 22] = cls
            stem = f'ADE_{split[:5]}_{i:08d}'
            cv2.imwrite(osp.join(root, 'images', split, stem + '.jpg'), img)
            cv2.imwrite(osp.join(root, 'annotations', split, stem + '.png'), label)
    return root


def write_mmdet_tiny_config(path, checkpoint, data_root):
    """The COCO config at 64 px with the tiny ViT (patch 8: pyramid scales 2 .. 0.25
    give the usual strides 4 .. 32), 2 iterations."""
    text = f'''
_base_ = [{MMDET_CONFIG!r}]
size = (64, 64)
data_root = {data_root!r}
model = dict(
    data_preprocessor=dict(
        batch_augments=[dict(type='BatchFixedSizePad', size=size, pad_mask=True)]),
    backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH!r}), img_size=64, patch_size=8,
                  window_size=4, window_block_indexes=[0, 1, 2], drop_path_rate=0.0,
                  init_cfg=dict(checkpoint={checkpoint!r})),
    neck=dict(in_channels=32, out_channels=32, scale_factors=(2.0, 1.0, 0.5, 0.25)),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, conv_out_channels=32, fc_out_channels=64),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32)),
    # 2 iterations cannot lift any score over 0.05: keep every box so AP is computed
    test_cfg=dict(rcnn=dict(score_thr=0.0)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='Pad', size=size, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=size, keep_ratio=True),
    dict(type='Pad', size=size, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
optim_wrapper = dict(paramwise_cfg=dict(num_layers=4))
train_cfg = dict(max_iters=2, val_interval=2, dynamic_intervals=None)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
'''
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def write_mmseg_tiny_config(path, checkpoint, data_root):
    """The ADE20K config with 48 px crops (a 6 x 6 grid: the 4 x 4 pre-training
    pos_embed is resized) and the tiny ViT, 2 iterations."""
    text = f'''
_base_ = [{MMSEG_CONFIG!r}]
crop = (48, 48)
data_root = {data_root!r}
model = dict(
    data_preprocessor=dict(size=crop),
    backbone=dict(img_size=crop, patch_size=8, embed_dims=32, num_layers=4, num_heads=2,
                  mlp_ratio=2, out_indices=[0, 1, 2, 3], drop_path_rate=0.0,
                  init_cfg=dict(checkpoint={checkpoint!r})),
    neck=dict(embed_dim=32),
    decode_head=dict(in_channels=[32, 32, 32, 32], channels=32),
    auxiliary_head=dict(in_channels=32, channels=16),
    test_cfg=dict(mode='slide', crop_size=crop, stride=(32, 32)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(64, 48), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 48), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(paramwise_cfg=dict(num_layers=4))
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
'''
    with open(path, 'w') as f:
        f.write(text)
    return str(path)
