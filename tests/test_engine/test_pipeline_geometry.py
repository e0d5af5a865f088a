"""Start-up refusal of training pipelines whose geometry FAMT cannot follow (real pipelines on
SyntheticObjects; the real Runner for the hook's start-up)."""
import copy

import pytest
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS

import famt_mm  # noqa: F401
from famt_mm.datasets.pipeline_checks import check_train_pipeline

CROP = dict(type='FAMTRandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0),
            backend='pillow', interpolation='bicubic')
FLIP = dict(type='RandomFlip', prob=0.5)
TWO_PIC = dict(type='FAMTRandomResizedCropAndInterpolationWithTwoPic', size=32, second_size=16,
               interpolation='bicubic', second_interpolation='lanczos')
PACK = dict(type='PackInputs', meta_keys=('sample_idx', 'img_path', 'famt_crop', 'flip',
                                          'flip_direction'))


def _pack(*keys):
    return dict(type='PackInputs', meta_keys=keys)


@pytest.mark.parametrize('pipeline, match', [
    # a dropped flip: the maps of flipped crops would not be flipped
    ([CROP, FLIP, _pack('sample_idx', 'img_path', 'famt_crop')],
     r"PackInputs must keep 'flip', 'flip_direction' in meta_keys"),
    ([CROP, FLIP, _pack('img_path', 'famt_crop', 'flip', 'flip_direction')],
     r"PackInputs must keep 'sample_idx' in meta_keys"),
    # the box would be in the flipped / cut image's coordinates
    ([FLIP, CROP, PACK], 'RandomFlip comes before FAMTRandomResizedCrop'),
    ([dict(type='CenterCrop', crop_size=40), CROP, FLIP, PACK],
     'CenterCrop comes before FAMTRandomResizedCrop'),
    ([dict(type='RandomApply', transforms=[dict(type='Pad', size=(56, 56))]), CROP, PACK],
     'Pad comes before FAMTRandomResizedCrop'),  # inside a wrapper
    # moved after the box was recorded
    ([CROP, dict(type='Rotate', angle=10.0, prob=1.0), PACK],
     'Rotate comes after FAMTRandomResizedCrop'),
    ([CROP, FLIP, dict(type='RandomCrop', crop_size=24), PACK],
     'RandomCrop comes after FAMTRandomResizedCrop'),
    ([CROP, dict(type='RandAugment', policies='timm_increasing', num_policies=2,
                 magnitude_level=9), PACK],
     'RandAugment comes after FAMTRandomResizedCrop'),
    ([CROP, CROP, PACK], r'has 2 recording crops \(FAMTRandomResizedCrop, '),
    ([FLIP, TWO_PIC, CROP, PACK], 'has 2 recording crops'),
    # the second flip overwrites the packed flip of the first
    ([CROP, FLIP, FLIP, PACK], 'has 2 RandomFlip'),
    ([FLIP, TWO_PIC, FLIP, PACK], 'has 2 RandomFlip'),
    # mmpretrain's BEiT crop records nothing; a torchvision crop hides its name in a wrapper
    ([FLIP, dict(TWO_PIC, type='RandomResizedCropAndInterpolationWithTwoPic'), PACK],
     'does not record the crop box.*FAMTRandomResizedCropAndInterpolationWithTwoPic'),
    ([CROP, dict(type='torchvision/RandomCrop', size=24), PACK],
     'TorchVisonTransformWrapper comes after FAMTRandomResizedCrop'),
    ([FLIP, dict(TWO_PIC, size=24), PACK],
     'FAMTRandomResizedCropAndInterpolationWithTwoPic makes 24x24 crops'),
])
def test_pipeline_geometry_is_refused(famt_runner_cfg, pipeline, match):
    ds_cfg = copy.deepcopy(famt_runner_cfg().train_dataloader.dataset)
    ds_cfg['pipeline'] = pipeline
    with pytest.raises(ValueError, match=match):
        check_train_pipeline(DATASETS.build(ds_cfg), (32, 32), (4, 4))


def test_runner_refuses_a_pipeline_that_drops_the_flip_at_start(famt_runner_cfg):
    cfg = famt_runner_cfg(max_epochs=2, start_epoch=1)
    cfg.train_dataloader.dataset.pipeline = [CROP, FLIP, _pack('sample_idx', 'famt_crop')]
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match="PackInputs must keep 'flip', 'flip_direction'"):
        runner.train()
    assert runner.iter == 0  # refused before the first step, not at the first refresh


@pytest.mark.parametrize('wrapper, match', [
    (dict(type='RepeatDataset', times=2), 'position 79 of the training set '
     r'\(RepeatDataset\) has sample_idx=39'),
    (dict(type='ConcatDataset'), r'position 79 of the training set \(ConcatDataset\) has '
     'sample_idx=39'),
])
def test_sample_idx_that_is_not_the_position_is_refused_at_start(famt_runner_cfg, wrapper,
                                                                 match):
    cfg = famt_runner_cfg(max_epochs=2, start_epoch=1)
    inner = copy.deepcopy(cfg.train_dataloader.dataset)
    if wrapper['type'] == 'ConcatDataset':
        wrapper['datasets'] = [inner, copy.deepcopy(inner)]
    else:
        wrapper['dataset'] = inner
    cfg.train_dataloader.dataset = wrapper
    with pytest.raises(ValueError, match=match + '.*RepeatDataset, ConcatDataset'):
        Runner.from_cfg(cfg).train()


def test_accepted_pipelines(famt_runner_cfg):
    # pixel changes, a whole-image resize before the box, flips after it, in any order
    cfg = famt_runner_cfg()
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg['img_size'] = 48
    ds_cfg['pipeline'] = [dict(type='Resize', scale=40), dict(type='ColorJitter', brightness=0.2),
                          CROP, dict(type='RandomFlip', prob=0.5, direction=['horizontal',
                                                                             'vertical']),
                          dict(type='RandomGrayscale', prob=0.1), PACK]
    dataset = DATASETS.build(ds_cfg)
    assert check_train_pipeline(dataset, (32, 32), (4, 4)) is None
    # the same pipeline inside a wrapper whose positions are the sample indices
    assert check_train_pipeline(DATASETS.build(dict(type='RepeatDataset', times=1,
                                                    dataset=ds_cfg)), (32, 32), (4, 4)) is None
    # BEiT's and CAE's order: the flip before the two-picture crop, which records the box
    # in the unflipped image (tests/test_datasets/test_two_pic_crop.py)
    ds_cfg['pipeline'] = [dict(type='ColorJitter', brightness=0.4), FLIP, TWO_PIC, PACK]
    assert check_train_pipeline(DATASETS.build(ds_cfg), (32, 32), (4, 4)) is None
