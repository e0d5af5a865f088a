"""The weight bank a run trains on is the one computed for its images: a resumed bank of another
image order or with NaN / wrong-shaped contents stops the run; NaN / inf weight maps of a refresh
fall back to uniform, counted, and training goes on (the real Runner, shrunk demo config)."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

import famt_mm  # noqa: F401
from famt_mm.compat import load_local_checkpoint
from tests.test_engine.fault_helpers import CUSTOM_IMPORTS
from tests.test_engine.run_helpers import RESIZE, famt_hook, own_logger, run_log


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
