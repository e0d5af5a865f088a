"""The FAMT algorithm contract (famt_mm/models/famt_algorithm.py): an algorithm missing part of
it is refused when built, naming what is missing; what every algorithm gets (split, grids)."""
import pytest
import torch
from mmpretrain.models.selfsup import MAE

from famt_mm.models.famt_algorithm import (FAMT_ALGORITHMS, FAMTAlgorithm, check_famt_model,
                                           famt_algorithm_for, is_famt_model, pretrain_only_keys)
from tests.test_models.test_famt_mae import tiny_cfg
from tests.test_models.test_famt_simmim import build, simmim_cfg


@pytest.fixture
def half_algorithm():
    """A FAMT MAE that provides only plain_algorithm and famt_loss (unregistered afterwards)."""
    class FAMTHalfMAE(FAMTAlgorithm, MAE):
        plain_algorithm = 'MAE'

        def famt_loss(self, inputs, data_samples, split):
            return {}
    yield FAMTHalfMAE
    FAMT_ALGORITHMS.pop('FAMTHalfMAE')


def test_an_algorithm_missing_part_of_the_contract_is_refused_when_built(half_algorithm):
    cfg = tiny_cfg()
    cfg.pop('type')
    with pytest.raises(TypeError, match='FAMTHalfMAE does not provide the FAMT algorithm '
                                        'contract: missing famt_types, famt_term_context, '
                                        'famt_reconstruct'):
        half_algorithm(**cfg)
    assert famt_algorithm_for('MAE').__name__ == 'FAMTMAE'  # the incomplete one is never chosen
    fake = object.__new__(half_algorithm)  # an instance that slipped past __init__
    assert not is_famt_model(fake)
    with pytest.raises(TypeError, match='missing famt_types'):
        check_famt_model(fake, 'FAMTWeightHook')


def test_what_every_algorithm_gets_split_and_grids():
    torch.manual_seed(0)
    model = build(simmim_cfg())  # 8 x 8 patches, 4 x 4 units of 2 x 2
    assert (model.patch_grid_hw, model.grid_hw, model.unit_scale) == ((8, 8), (4, 4), 2)
    assert model.input_hw == (64, 64) and model.patch_size == (8, 8)
    assert 'mask_token' in pretrain_only_keys()
    units = (torch.tensor([[5]]), torch.tensor([[0]]), torch.tensor([[15]]))
    split = model.split_from_units(units)
    assert split.masked.tolist() == [[18, 19, 26, 27]] and split.thrown.tolist() == [[0, 1, 8, 9]]
    assert split.visible.tolist() == [[54, 55, 62, 63]] and split.units == units
    # the refresh context comes in eval mode; the model's mode is restored
    seen = []
    model.backbone.layers[0].register_forward_pre_hook(lambda m, a: seen.append(m.training))
    ctx = model.famt_context(torch.randn(2, 3, 64, 64))
    assert seen == [False] and model.training
    assert ctx.attn_cls.shape == (2, 2, 64) and ctx.tokens.shape == (2, 64, 32)
