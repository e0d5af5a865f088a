"""FAMT on mmpretrain's own MAE recipes, inherited with ``mmpretrain::`` (famt_mm.recipe)."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from famt_mm.recipe import famt_pipeline, famt_train_dataloader
from tests.conftest import REPO, run_tool

INHERITED = {  # config -> (mmpretrain arch, patch size, epochs)
    'configs/famt_mae_vit-b_in1k.py': ('b', 16, 400),
    'configs/famt_mae_vit-l_in1k.py': ('l', 16, 800),
    'configs/famt_mae_vit-h_in1k.py': ('h', 14, 1600),
}


@pytest.mark.parametrize('path', sorted(INHERITED))
def test_inherited_recipes_keep_mmpretrain_and_add_famt(path):
    cfg = Config.fromfile(osp.join(REPO, path))
    arch, patch, epochs = INHERITED[path]
    assert (cfg.model.type, cfg.model.backbone.type) == ('FAMTMAE', 'FAMTViT')
    assert (cfg.model.backbone.arch, cfg.model.backbone.patch_size) == (arch, patch)
    assert cfg.model.neck.patch_size == cfg.model.head.patch_size == patch
    assert cfg.train_cfg.max_epochs == epochs and cfg.optim_wrapper.type == 'AmpOptimWrapper'
    loader = cfg.train_dataloader
    assert '_scope_' not in loader.collate_fn  # mmengine would pass it to default_collate
    assert loader.batch_size == 512 and loader.dataset.type == 'ImageNet'
    steps = [s.type for s in loader.dataset.pipeline]
    assert steps == ['LoadImageFromFile', 'FAMTRandomResizedCrop', 'RandomFlip', 'PackInputs']
    assert loader.dataset.pipeline[1].crop_ratio_range == (0.2, 1.0)
    assert loader.dataset.pipeline[3].meta_keys == (
        'sample_idx', 'img_path', 'famt_crop', 'flip', 'flip_direction')
    assert [h.type for h in cfg.custom_hooks] == ['FAMTWeightHook']


def test_famt_pipeline_keeps_other_steps_and_refuses_a_pipeline_without_crop():
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='RandomResizedCrop', scale=192, backend='cv2'),
                dict(type='ColorJitter', brightness=0.4),
                dict(type='PackInputs', meta_keys=('img_path', 'ori_shape'))]
    out = famt_pipeline(pipeline)
    assert out[1] == dict(type='FAMTRandomResizedCrop', scale=192, backend='cv2')
    assert out[2] == pipeline[2] and pipeline[1]['type'] == 'RandomResizedCrop'  # a copy
    assert out[3]['meta_keys'] == ('img_path', 'ori_shape', 'sample_idx', 'famt_crop', 'flip',
                                   'flip_direction')
    with pytest.raises(ValueError, match='exactly one RandomResizedCrop'):
        famt_pipeline([dict(type='LoadImageFromFile'), dict(type='PackInputs')])
    loader = famt_train_dataloader(dict(batch_size=2, collate_fn=dict(
        _scope_='mmpretrain', type='default_collate'), dataset=dict(pipeline=pipeline)))
    assert loader['_delete_'] and loader['collate_fn'] == dict(type='default_collate')


def imagenet_folder(root, classes=2, per_class=8):
    """A tiny ImageNet-format train split: train/<wnid>/*.JPEG and meta/train.txt."""
    import cv2
    rng = np.random.default_rng(0)
    lines = []
    for label in range(classes):
        wnid = f'n{label:08d}'
        (root / 'train' / wnid).mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(root / 'train' / wnid / f'{wnid}_{i}.JPEG'),
                        rng.integers(0, 255, (36 + 4 * i, 44, 3), dtype=np.uint8))
            lines.append(f'{wnid}/{wnid}_{i}.JPEG {label}')
    (root / 'meta').mkdir()
    (root / 'meta' / 'train.txt').write_text('\n'.join(lines) + '\n')
    return str(root)


# The ViT-L recipe shrunk on the command line: DeiT-tiny encoder on 32 px (4 x 4 patches of
# 8 px), one-block decoder, 16 images, 3 epochs: random masking, FAMT from epoch 1, refreshes
# before epochs 1 and 2.
SHRINK = ['model.backbone.arch=deit-tiny', 'model.backbone.img_size=32',
          'model.backbone.patch_size=8', 'model.neck.patch_size=8', 'model.head.patch_size=8',
          'model.neck.num_patches=16', 'model.neck.embed_dim=192',
          'model.neck.decoder_embed_dim=16', 'model.neck.decoder_depth=1',
          'model.neck.decoder_num_heads=2', 'train_dataloader.dataset.pipeline.1.scale=32',
          'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
          'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=3',
          'custom_hooks.0.start_epoch=1', 'custom_hooks.0.interval=1',
          'custom_hooks.0.batch_size=8', 'custom_hooks.0.num_workers=0',
          'default_hooks.logger.interval=1']


def test_inherited_vit_l_recipe_trains_through_the_switch_and_a_refresh(tmp_path):
    from famt_mm.compat import load_local_checkpoint
    data = imagenet_folder(tmp_path / 'imagenet')
    work = tmp_path / 'work'
    proc = run_tool(['tools/train.py', 'configs/famt_mae_vit-l_in1k.py', '--work-dir', str(work),
                     '--cfg-options', f'train_dataloader.dataset.data_root={data}'] + SHRINK)
    log = proc.stdout + proc.stderr
    assert 'FAMT: epoch 1 trains with random masking' in log
    assert 'FAMT refresh before epoch 2: 16 images' in log
    assert 'FAMT: epoch 2 trains with FAMT masking and throwing' in log
    assert 'FAMT refresh before epoch 3: 16 images' in log
    ckpt = load_local_checkpoint(str(work / 'epoch_3.pth'))
    assert ckpt['famt']['bank'].shape == (16, 4, 4)
    assert ckpt['meta']['epoch'] == 3


# A user's config the usual mm way: inherit mmpretrain's MAE recipe (or the project's FAMT
# recipe) and replace the pipeline with ``train_dataloader = dict(dataset=dict(pipeline=...))``;
# the inherited collate_fn keeps mmengine's ``_scope_`` tag.
USUAL_WAY = """
_base_ = [{base!r}]
custom_imports = dict(imports=['famt_mm'], allow_failed_imports=False)
model = dict(type='FAMTMAE', backbone=dict(type='FAMTViT'),
             neck=dict(type='FAMTPretrainDecoder'), head=dict(type='FAMTPretrainHead'),
             mask_generator=dict(type='FAMTMaskGenerator'))
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='FAMTRandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs', meta_keys=('sample_idx', 'famt_crop', 'flip', 'flip_direction'))]))
custom_hooks = [dict(type='FAMTWeightHook', start_epoch=1, interval=1, batch_size=8)]
"""


def test_usual_pipeline_override_of_an_inherited_recipe_trains(tmp_path):
    from mmengine.config import Config

    from tools.train import main
    project = tmp_path / 'project.py'
    project.write_text(USUAL_WAY.format(base=osp.join(REPO, 'configs/famt_mae_vit-b_in1k.py')))
    assert '_scope_' not in Config.fromfile(str(project)).train_dataloader.collate_fn
    user = tmp_path / 'user.py'
    user.write_text(USUAL_WAY.format(
        base='mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'))
    # what mmengine gives, and what made default_collate fail at the first batch
    assert Config.fromfile(str(user)).train_dataloader.collate_fn._scope_ == 'mmpretrain'
    data = imagenet_folder(tmp_path / 'imagenet')
    shrink = [s for s in SHRINK if not s.startswith(('train_dataloader.dataset.pipeline',
                                                     'train_cfg', 'custom_hooks.0'))]
    work = tmp_path / 'work'
    main([str(user), '--work-dir', str(work), '--cfg-options',
          f'train_dataloader.dataset.data_root={data}', 'train_cfg.max_epochs=2',
          'custom_hooks.0.num_workers=0'] + shrink)  # the real Runner, through the switch
    log = open(next(work.glob('*/*.log'))).read()
    assert 'FAMT: epoch 2 trains with FAMT masking and throwing' in log
    assert 'Epoch(train) [2][4/4]' in log and 'Error' not in log
