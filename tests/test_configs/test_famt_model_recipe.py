"""famt_mm.recipe.famt_model: the FAMT types any FAMT algorithm declares, onto its plain recipe."""
import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

from famt_mm.models.famt_algorithm import FAMT_ALGORITHMS, missing_contract
from famt_mm.recipe import famt_model


def test_default_is_mae_as_old_configs_expect():
    assert famt_model(mask_ratio=0.45, throw_ratio=0.40) == dict(
        type='FAMTMAE', backbone=dict(type='FAMTViT'), neck=dict(type='FAMTPretrainDecoder'),
        head=dict(type='FAMTPretrainHead'),
        mask_generator=dict(type='FAMTMaskGenerator', mask_ratio=0.45, throw_ratio=0.40))


@pytest.mark.parametrize('cls', [c for c in FAMT_ALGORITHMS.values() if not missing_contract(c)],
                         ids=lambda c: c.__name__)
def test_every_algorithm_merges_its_famt_types(cls):
    model = famt_model(cls.plain_algorithm, mask_ratio=0.3)
    assert {k: v for k, v in model.items() if k != 'mask_generator'} == cls.famt_types
    assert model['mask_generator'] == dict(type='FAMTMaskGenerator', mask_ratio=0.3)
    model['type'] = 'changed'
    assert cls.famt_types['type'] == cls.__name__  # a copy: the class attribute is untouched


def test_simmim_recipe_becomes_famt_simmim_that_builds():
    from tests.test_models.test_famt_simmim import simmim_cfg
    cfg = Config(dict(model=simmim_cfg(famt=False)))
    cfg.merge_from_dict(dict(model=famt_model('SimMIM', mask_ratio=0.44, throw_ratio=0.26)))
    cfg.model.mask_patch_size = 16  # the tiny test ViT's 2 x 2-patch units
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'FAMTSimMIM' and model.grid_hw == (4, 4)
    assert type(model.backbone).__name__ == 'FAMTSimMIMViT'


def test_an_algorithm_without_famt_is_named():
    with pytest.raises(KeyError, match=r"no FAMT algorithm for 'MixMIM'.*'MAE'.*'SimMIM'"):
        famt_model('MixMIM')
