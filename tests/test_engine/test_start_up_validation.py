"""Settings FAMT cannot honour stop at start, through the real mmengine Runner on the shrunk demo
config: mask generator ratios, the patch grid, the schedule, input / patch / crop sizes, the
training and refresh pipelines, and a FAMT model without its FAMTWeightHook."""
import uuid

import pytest
from mmengine.runner import Runner

import famt_mm  # noqa: F401
from tests.conftest import FAMT_DEMO
from tests.test_engine.run_helpers import RESIZE


def _set(cfg, key, value):
    *path, last = key.split('.')
    node = cfg
    for part in path:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = value


@pytest.mark.parametrize('changes, error, match', [
    # FAMTMaskGenerator (raised while the Runner builds the model)
    ({'model.mask_generator.mask_ratio': 1.0}, ValueError, r'mask_ratio=1.0 must lie in \[0, 1\)'),
    ({'model.mask_generator.throw_ratio': -0.1}, ValueError, r'throw_ratio=-0.1 must lie in'),
    ({'model.mask_generator.random_mask_ratio': 1.2}, ValueError, 'random_mask_ratio=1.2'),
    ({'model.mask_generator.mask_ratio': 0.6, 'model.mask_generator.throw_ratio': 0.4},
     ValueError, 'leaves no visible patch'),
    ({'model.mask_generator.combine': 'max'}, ValueError, "unknown combine mode 'max'"),
    # the patch grid of the model (4 x 4 here)
    ({'model.mask_generator.mask_ratio': 0.05}, ValueError,
     r"4x4 patch grid \(16 patches\) does not fit the mask generator: mask_ratio=0.05 masks no"),
    ({'model.mask_generator.random_mask_ratio': 0.05}, ValueError, 'masks no patch out of 16'),
    # schedule
    ({'custom_hooks.0.start_epoch': 2}, ValueError, 'start_epoch=2 >= max_epochs=2'),
    ({'custom_hooks.0.interval': 0}, ValueError, 'interval=0 must be an int >= 1'),
    ({'train_cfg': dict(type='IterBasedTrainLoop', max_iters=4),
      'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=False)]},
     ValueError, 'schedules by epoch'),
    # input size vs patch size vs crop size
    ({'model.backbone.img_size': 30}, ValueError,
     r'input size \(30, 30\) is not divisible by the patch size \(8, 8\)'),
    ({'train_dataloader.dataset.pipeline.0.scale': 48}, ValueError,
     'makes 48x48 crops but the model takes 32x32 inputs'),
    # pipelines
    ({'train_dataloader.dataset.pipeline.0.type': 'RandomResizedCrop'}, ValueError,
     'does not record the crop box'),
    ({'train_dataloader.dataset.pipeline.2.meta_keys': ('sample_idx', 'flip')}, ValueError,
     "PackInputs must keep 'famt_crop'"),
    ({'custom_hooks.0.refresh_pipeline': [dict(type='CenterCrop', crop_size=24), RESIZE,
                                         dict(type='PackInputs')]},
     ValueError, r"must not augment, crop or flip, but has \['CenterCrop'\]"),
    ({'custom_hooks.0.refresh_pipeline': [dict(type='ColorJitter', brightness=0.4), RESIZE,
                                         dict(type='PackInputs')]},
     ValueError, 'must not augment'),
    ({'custom_hooks.0.on_bad_image': 'ignore'}, ValueError, "on_bad_image='ignore'"),
])
def test_start_up_validation(famt_runner_cfg, changes, error, match):
    cfg = famt_runner_cfg(max_epochs=2, start_epoch=0)
    for key, value in changes.items():
        _set(cfg, key, value)
    with pytest.raises(error, match=match):
        Runner.from_cfg(cfg).train()


@pytest.mark.parametrize('refresh_pipeline, error, match', [
    # no Resize: 48 px images reach a model that takes 32 px
    ([dict(type='PackInputs')], ValueError,
     r'refresh pipeline gives \(48, 48\) images but the model takes \(32, 32\)'),
    # no sample_idx: the bank row of each map would be unknown
    ([RESIZE, dict(type='PackInputs', meta_keys=('img_path', ))], KeyError,
     "must keep 'sample_idx'"),
])
def test_refresh_pipeline_validation(famt_runner_cfg, refresh_pipeline, error, match):
    cfg = famt_runner_cfg(max_epochs=1, start_epoch=0)
    cfg.train_dataloader.dataset.img_size = 48  # the training crop still resizes to 32
    cfg.custom_hooks[0]['refresh_pipeline'] = refresh_pipeline
    runner = Runner.from_cfg(cfg)
    with pytest.raises(error, match=match):
        runner.train()
    assert runner.iter == 0  # stopped in the refresh before epoch 0, nothing trained


def _cfg(tmp_path, config=FAMT_DEMO, **kwargs):
    from tests.conftest import tiny_cfg
    cfg = tiny_cfg(tmp_path / f'work_{uuid.uuid4().hex[:6]}', config=config, **kwargs)
    cfg.experiment_name = f'famt_start_up_{uuid.uuid4().hex[:8]}'  # own logger per Runner
    return cfg


# -- a FAMT model without FAMTWeightHook -------------------------------------------------
def test_famt_model_without_its_hook_stops_before_the_first_step(tmp_path):
    cfg = _cfg(tmp_path, max_epochs=2)
    cfg.custom_hooks = []  # a derived config's own (here: empty) list replaced the base's
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError, match=r'FAMTMAE is training without FAMTWeightHook.*'
                                           r'plain MAE.*replaces the base config.*'
                                           r"dict\(type='FAMTWeightHook'.*"
                                           r'custom_hooks = _base_.custom_hooks \+ \[...\]'):
        runner.train()
    assert runner.iter == 0
