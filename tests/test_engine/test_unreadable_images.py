"""Unreadable image files: in the refresh pass (on_bad_image 'skip' / 'fail') and what the
training pipeline does with them; FAMTLoadImageFromFile names the file whatever the decoder."""
import re

import cv2
import pytest
import torch
from mmengine.runner import Runner

import famt_mm  # noqa: F401
from famt_mm.datasets import FAMT_META_KEYS, render_synthetic_object
from tests.test_engine.run_helpers import famt_hook, own_logger, run_log


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


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_unreadable_training_image_is_named_whatever_the_decoder(tmp_path, backend):
    from mmcv.transforms import LoadImageFromFile

    from famt_mm.datasets import FAMTLoadImageFromFile
    path = str(tmp_path / 'empty.jpg')
    open(path, 'wb').close()  # zero bytes
    with pytest.raises(Exception) as upstream:  # what mmcv says: no file name
        LoadImageFromFile(imdecode_backend=backend).transform(dict(img_path=path))
    assert path not in str(upstream.value)
    with pytest.raises(OSError, match=rf'cannot read training image {re.escape(path)}: '):
        FAMTLoadImageFromFile(imdecode_backend=backend).transform(dict(img_path=path))
    loader = FAMTLoadImageFromFile(imdecode_backend=backend, ignore_empty=True)
    assert loader.transform(dict(img_path=path)) is None and loader.ignore_empty
