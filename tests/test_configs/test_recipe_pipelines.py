"""famt_pipeline on the training pipelines of mmpretrain's own MIM recipes (inherited with
``mmpretrain::`` as a config does): the recording crop in place of the recipe's, the recipe's
mask-drawing transform dropped, the FAMT meta keys packed, every other step as it was; and the
result runs on an image and passes the hook's start-up check."""
import copy

import cv2
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from mmpretrain.registry import TRANSFORMS

import famt_mm  # noqa: F401
from famt_mm.datasets import FAMT_META_KEYS
from famt_mm.datasets.pipeline_checks import _check_transforms
from famt_mm.recipe import famt_pipeline

TWO_PIC = 'FAMTRandomResizedCropAndInterpolationWithTwoPic'
RRC = 'FAMTRandomResizedCrop'
# recipe -> (steps famt_pipeline gives, model input size, target view size or None)
RECIPES = {
    'beit/beit_beit-base-p16_8xb256-amp-coslr-300e_in1k.py':
        (['LoadImageFromFile', 'ColorJitter', 'RandomFlip', TWO_PIC, 'PackInputs'], 224, 112),
    'beitv2/beitv2_beit-base-p16_8xb256-amp-coslr-300e_in1k.py':
        (['LoadImageFromFile', 'ColorJitter', 'RandomFlip', TWO_PIC, 'PackInputs'], 224, 224),
    'cae/cae_beit-base-p16_8xb256-amp-coslr-300e_in1k.py':
        (['LoadImageFromFile', 'RandomFlip', TWO_PIC, 'PackInputs'], 224, 112),
    'maskfeat/maskfeat_vit-base-p16_8xb256-amp-coslr-300e_in1k.py':
        (['LoadImageFromFile', RRC, 'RandomFlip', 'PackInputs'], 224, None),
    'simmim/simmim_swin-base-w6_8xb256-amp-coslr-100e_in1k-192px.py':
        (['LoadImageFromFile', RRC, 'RandomFlip', 'PackInputs'], 192, None),
    'eva/eva-mae-style_vit-base-p16_16xb256-coslr-400e_in1k.py':
        (['LoadImageFromFile', RRC, 'RandomFlip', 'PackInputs'], 224, None),
    'milan/milan_vit-base-p16_16xb256-amp-coslr-400e_in1k.py':
        (['LoadImageFromFile', RRC, 'RandomFlip', 'PackInputs'], 224, None),
}


def recipe_pipeline(tmp_path, name):
    """The recipe's training pipeline as a config inheriting it sees it (``_scope_`` tags)."""
    cfg = tmp_path / 'inherit.py'
    cfg.write_text(f"_base_ = 'mmpretrain::{name}'\n")
    return Config.fromfile(str(cfg)).train_dataloader.dataset.pipeline


def _type(step):
    return step['type'].split('.')[-1]


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_pipeline_becomes_famt_and_runs(tmp_path, name):
    steps, size, target = RECIPES[name]
    plain = recipe_pipeline(tmp_path, name)
    before = copy.deepcopy(plain)
    famt = famt_pipeline(plain)
    assert plain == before  # a copy: the inherited config is not edited
    assert [_type(s) for s in famt] == steps
    # every step but the crop's type and PackInputs' meta keys is the recipe's own
    kept = [dict(s) for s in plain if 'MaskGenerator' not in _type(s)]
    assert len(kept) == len(famt)
    for old, new in zip(kept, famt):
        if _type(new) in (RRC, TWO_PIC):
            assert _type(old) == _type(new)[len('FAMT'):]
            old['type'] = new['type']
        if _type(new) == 'PackInputs':
            assert new['meta_keys'] == FAMT_META_KEYS  # the recipes pack mmpretrain's defaults
            old['meta_keys'] = new['meta_keys']
        assert new == old
    # real transforms on a real file: the box and flip are packed, no pipeline mask any more
    transforms = [TRANSFORMS.build(s) for s in famt]
    assert _check_transforms(transforms, (size, size), (size // 16, size // 16), 'fail') is None
    path = str(tmp_path / 'x.png')
    cv2.imwrite(path, np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8))
    np.random.seed(0)
    packed = Compose(transforms)(dict(img_path=path, sample_idx=3))
    views = packed['inputs'] if isinstance(packed['inputs'], list) else [packed['inputs']]
    assert [tuple(v.shape) for v in views] == [(3, size, size)] + (
        [(3, target, target)] if target else [])
    sample = packed['data_samples']
    assert sample.sample_idx == 3 and len(sample.famt_crop) == 4 and 'flip' in sample
    assert 'mask' not in sample


def test_mff_recipes_torchvision_pipeline_is_refused_naming_its_steps(tmp_path):
    # torchvision/RandomCrop and RandomHorizontalFlip record neither box nor flip
    plain = recipe_pipeline(tmp_path, 'mff/mff_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
    with pytest.raises(ValueError, match=r"exactly one RandomResizedCrop or .*found 0 and 1.*"
                                         r"'torchvision/RandomCrop'.*use the mmpretrain"):
        famt_pipeline(plain)


def test_famt_pipeline_keeps_algorithm_keys_and_refuses_decode_with_the_two_picture_crop():
    pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5),
                dict(type='RandomResizedCropAndInterpolationWithTwoPic', size=224),
                dict(type='BEiTMaskGenerator', input_size=(14, 14), num_masking_patches=75),
                dict(type='PackInputs', algorithm_keys=('gt_label', ), meta_keys=('img_path', ))]
    out = famt_pipeline(pipeline)
    assert out[-1] == dict(type='PackInputs', algorithm_keys=('gt_label', ),
                           meta_keys=('img_path', 'sample_idx', 'famt_crop', 'flip',
                                      'flip_direction'))
    for decode in ('cv2-reduced', 'gpu'):
        with pytest.raises(ValueError, match='replace(s)? RandomResizedCrop only'):
            famt_pipeline(pipeline, decode=decode)
