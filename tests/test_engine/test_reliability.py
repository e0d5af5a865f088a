"""Reliability of FAMT training through the real mmengine Runner on the shrunk demo config.

Start-up validation, weight bank integrity on resume, NaN / inf maps, unreadable image
files in the refresh pass (and what the training pipeline does with them), and the
``--resume`` warning of tools/train.py. Preemption and multi-process runs:
test_preemption.py and test_distributed_reliability.py.
"""
import glob
import os.path as osp
import uuid

import cv2
import numpy as np
import pytest
import torch
from mmengine.runner import Runner

import famt_mm  # noqa: F401
from famt_mm.compat import load_local_checkpoint
from famt_mm.datasets import FAMT_META_KEYS, render_synthetic_object
from famt_mm.engine import FAMTWeightHook
from tests.conftest import MAE_DEMO, write_tiny_config
from tests.test_engine.test_reliability_helpers import CUSTOM_IMPORTS

# The refresh pipeline FAMTWeightHook builds by default for SyntheticObjects.
RESIZE = dict(type='Resize', scale=(32, 32), backend='pillow', interpolation='bicubic')


def famt_hook(runner):
    return next(h for h in runner.hooks if isinstance(h, FAMTWeightHook))


def own_logger(cfg):
    """A unique experiment name: Runners built within the same second would otherwise share
    one MMLogger (named by the timestamp) and write into the first one's log file."""
    cfg.experiment_name = f'famt_reliability_{uuid.uuid4().hex[:8]}'
    return cfg


def run_log(runner):
    return open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()


# -- 1. start-up validation ----------------------------------------------------------
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


# -- 2. weight bank integrity ----------------------------------------------------------
@pytest.fixture(scope='module')
def famt_checkpoint(tmp_path_factory):
    """A 1-epoch run with a bank (refreshed before epoch 0) in epoch_1.pth."""
    from tests.conftest import tiny_cfg
    work = tmp_path_factory.mktemp('bank_source')
    Runner.from_cfg(tiny_cfg(work, max_epochs=1, start_epoch=0, interval=1)).train()
    return osp.join(work, 'epoch_1.pth')


def _resume_cfg(famt_runner_cfg, tmp_path, ckpt, name):
    cfg = famt_runner_cfg(max_epochs=3, start_epoch=1, interval=5)
    cfg.work_dir = str(tmp_path / name)
    cfg.resume, cfg.load_from = True, ckpt
    return cfg


def test_resume_with_same_images_in_another_order_fails(famt_runner_cfg, tmp_path,
                                                        famt_checkpoint):
    cfg = _resume_cfg(famt_runner_cfg, tmp_path, famt_checkpoint, 'reversed')
    cfg.train_dataloader.dataset.indices = list(range(39, -1, -1))  # same 40 images, reversed
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset) == 40
    with pytest.raises(ValueError, match=r'different training set \(same size, other images '
                                         r"or order\).*on_mismatch='recompute'"):
        runner.train()
    assert runner.iter == 0


def test_resume_with_a_corrupt_bank_fails(famt_runner_cfg, tmp_path, famt_checkpoint):
    ckpt = load_local_checkpoint(famt_checkpoint)
    ckpt['famt']['bank'][5, 1, 2] = float('nan')
    corrupt = str(tmp_path / 'corrupt.pth')
    torch.save(ckpt, corrupt)
    cfg = _resume_cfg(famt_runner_cfg, tmp_path, corrupt, 'corrupt')
    with pytest.raises(ValueError, match='holds NaN / inf values'):
        Runner.from_cfg(cfg).train()

    ckpt['famt']['bank'] = ckpt['famt']['bank'][:, :2]  # wrong shape, right num_samples
    torch.save(ckpt, corrupt)
    cfg = _resume_cfg(famt_runner_cfg, tmp_path, corrupt, 'corrupt2')
    with pytest.raises(ValueError, match=r'bank tensor is \(40, 2, 4\)'):
        Runner.from_cfg(cfg).train()


def test_nan_and_inf_maps_fall_back_to_uniform_counted_and_training_goes_on(famt_runner_cfg):
    # Refresh once before epoch 0 (interval 2 >= the 2 FAMT epochs: warned), with NaN
    # pixels in image 3 and +inf pixels in image 7: their encoder outputs are NaN.
    cfg = famt_runner_cfg(max_epochs=2, start_epoch=0, interval=2)
    cfg.custom_imports = CUSTOM_IMPORTS
    cfg.custom_hooks[0]['refresh_pipeline'] = [
        RESIZE, dict(type='FAMTTestBadPixels', nan_indices=[3], inf_indices=[7]),
        dict(type='PackInputs', meta_keys=('sample_idx', ))]
    runner = Runner.from_cfg(own_logger(cfg))
    runner.train()
    log = run_log(runner)
    assert 'interval=2 >= the 2 FAMT epochs (1..2): the weights are computed once' in log
    assert 'fallback to uniform: 2, unreadable: 0' in log
    assert '2 weight map(s) were NaN / inf / all zero and fell back to uniform: samples [3, 7]' \
        in log
    assert runner.message_hub.get_info('famt/fallback') == 2
    bank = famt_hook(runner).bank.float()
    assert torch.equal(bank[3], torch.ones(4, 4)) and torch.equal(bank[7], torch.ones(4, 4))
    others = torch.cat([bank[:3], bank[4:7], bank[8:]])
    assert (others != 1).flatten(1).any(1).all()  # every other map is a real one
    assert runner.iter == 2 * 5  # both FAMT epochs trained
    assert np.isfinite(runner.message_hub.get_scalar('train/loss').current())


# -- 3. unreadable image files ------------------------------------------------------------
@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    """13 readable 32 px images (PNG and JPEG) and one truncated JPEG, bad.jpg."""
    folder = tmp_path_factory.mktemp('images')
    for i in range(13):
        img, _ = render_synthetic_object(0, 'train', i, i % 8, 32)
        cv2.imwrite(str(folder / f'img_{i:02d}.{"png" if i % 2 else "jpg"}'), img)
    data = open(folder / 'img_00.jpg', 'rb').read()
    open(folder / 'bad.jpg', 'wb').write(data[:len(data) // 2])
    return str(folder)


def _file_cfg(famt_runner_cfg, folder, on_bad_image, load):
    cfg = famt_runner_cfg(max_epochs=2, start_epoch=0, interval=1)
    cfg.train_dataloader.dataset = dict(
        type='CustomDataset', data_root=folder, with_label=False,
        pipeline=[load,
                  dict(type='FAMTRandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.0),
                       backend='pillow', interpolation='bicubic'),
                  dict(type='RandomFlip', prob=0.5),
                  dict(type='PackInputs', meta_keys=FAMT_META_KEYS)])
    cfg.custom_hooks[0]['on_bad_image'] = on_bad_image
    return cfg


def _bad_index(runner):
    dataset = runner.train_dataloader.dataset
    bad = [i for i in range(len(dataset))
           if dataset.get_data_info(i)['img_path'].endswith('bad.jpg')]
    assert len(dataset) == 14 and len(bad) == 1
    return bad[0]


def test_unreadable_image_skip_gives_uniform_weights_and_training_goes_on(famt_runner_cfg,
                                                                           image_folder):
    # pillow + ignore_empty: the training pipeline returns None for bad.jpg and mmengine's
    # BaseDataset substitutes another image; the refresh pass must NOT take that substitute.
    load = dict(type='LoadImageFromFile', ignore_empty=True, imdecode_backend='pillow')
    runner = Runner.from_cfg(own_logger(_file_cfg(famt_runner_cfg, image_folder, 'skip', load)))
    k = _bad_index(runner)
    runner.train()
    log = run_log(runner)
    assert 'covers the refresh pass only' not in log
    assert log.count('unreadable: 1, normalised entropy') == 2  # refreshes before epochs 0, 1
    assert (f'FAMT refresh: sample {k} unreadable ({image_folder}/bad.jpg: ValueError: the '
            'pipeline returned None, e.g. LoadImageFromFile(ignore_empty=True) could not read '
            'the file); uniform weights used') in log
    bank = famt_hook(runner).bank.float()
    assert torch.equal(bank[k], torch.ones(4, 4))
    assert sum(bool((bank[i] != 1).any()) for i in range(14)) == 13
    assert runner.iter == 2 * 2  # 14 images / batch 8: both epochs trained


def test_unreadable_image_fail_names_the_file_and_the_option(famt_runner_cfg, image_folder):
    cfg = _file_cfg(famt_runner_cfg, image_folder, 'fail', dict(type='LoadImageFromFile'))
    runner = Runner.from_cfg(cfg)
    k = _bad_index(runner)
    with pytest.raises(RuntimeError, match=rf"cannot read sample {k} \(.*bad.jpg\): "
                                           r"AssertionError: failed to load image.*"
                                           r"on_bad_image='skip'"):
        runner.train()
    assert runner.iter == 0


def test_unreadable_image_with_default_loader_stops_training_after_the_refresh(
        famt_runner_cfg, image_folder):
    # What really happens with LoadImageFromFile's defaults (cv2, ignore_empty=False): the
    # refresh skips bad.jpg, but the training pipeline asserts on it (mmcv; cv2 returns None
    # without an exception, so even ignore_empty=True would not help with cv2). The hook
    # warns about this at start-up.
    cfg = _file_cfg(famt_runner_cfg, image_folder, 'skip', dict(type='LoadImageFromFile'))
    runner = Runner.from_cfg(own_logger(cfg))
    with pytest.raises(AssertionError, match=r'failed to load image: .*bad.jpg'):
        runner.train()
    log = run_log(runner)
    assert "on_bad_image='skip') covers the refresh pass only" in log
    assert 'unreadable: 1' in log  # the refresh before epoch 0 went through
    assert famt_hook(runner).refresh_epochs_done == [0] and runner.iter < 2


# -- tools/train.py --resume ----------------------------------------------------------------
def test_train_resume_without_checkpoint_warns_and_missing_path_fails(tmp_path):
    from tools.train import main
    cfg = write_tiny_config(tmp_path / 'mae_tiny.py', config=MAE_DEMO, max_epochs=1)
    work = tmp_path / 'fresh'
    main([cfg, '--work-dir', str(work), '--resume'])
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    assert f'WARNING - --resume: no checkpoint found in {work}' in log
    assert 'starting from scratch' in log
    assert osp.isfile(work / 'epoch_1.pth')
    with pytest.raises(FileNotFoundError, match='checkpoint .*missing.pth does not exist'):
        main([cfg, '--work-dir', str(work), '--resume', str(tmp_path / 'missing.pth')])
