"""NaN / inf losses through the real Runner on the shrunk FAMT demo: a non-finite step is skipped
with the parameters unchanged and counted, or stops the run when asked; a diverging run stops
after consecutive bad steps; skipping needs FAMTOptimWrapper (or AMP's scaler).

The test-only hook below is registered (``force=True``); configs reach it with
``custom_imports`` of this module.
"""
import os.path as osp
import uuid

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS

import famt_mm  # noqa: F401
from famt_mm.engine.hooks.nonfinite_loss_hook import amp_loss_scale, skips_nonfinite_steps
from tests.conftest import FAMT_DEMO
from tests.test_engine.fault_helpers import HELPERS

THIS = 'tests.test_engine.test_nonfinite_loss'
IMPORTS = dict(imports=['famt_mm', HELPERS, THIS], allow_failed_imports=False)


@HOOKS.register_module(force=True)
class FAMTTestParamWatch(Hook):
    """Records, per iteration, whether the loss was finite and whether the parameters moved."""

    priority = 'LOWEST'

    def __init__(self):
        self.records = []

    def _flat(self, runner):
        return torch.cat([p.detach().flatten().clone() for p in runner.model.parameters()])

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._before = self._flat(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        loss = runner.message_hub.get_scalar('train/loss').current()
        moved = not torch.equal(self._before, self._flat(runner))
        self.records.append((runner.iter, bool(np.isfinite(loss)), moved))


def _cfg(tmp_path, config=FAMT_DEMO, **kwargs):
    from tests.conftest import tiny_cfg
    cfg = tiny_cfg(tmp_path / f'work_{uuid.uuid4().hex[:6]}', config=config, **kwargs)
    cfg.experiment_name = f'famt_nonfinite_{uuid.uuid4().hex[:8]}'  # own logger per Runner
    return cfg


def _log(runner):
    return open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()


def _nan_image_cfg(tmp_path, **hook):
    """FAMT tiny demo (FAMTOptimWrapper, skip) with sample 3 made of NaN pixels."""
    cfg = _cfg(tmp_path, max_epochs=2, start_epoch=1, custom_imports=IMPORTS)
    cfg.train_dataloader.dataset.pipeline.insert(
        2, dict(type='FAMTTestBadPixels', nan_indices=[3]))  # after the crop and flip
    cfg.custom_hooks.append(dict(type='FAMTTestParamWatch'))
    cfg.default_hooks.nonfinite.update(hook)
    return cfg


def test_nan_loss_step_is_skipped_parameters_unchanged_and_counted(tmp_path):
    runner = Runner.from_cfg(_nan_image_cfg(tmp_path))
    runner.train()
    records = next(h for h in runner.hooks if isinstance(h, FAMTTestParamWatch)).records
    bad = [it for it, finite, _ in records if not finite]
    assert len(records) == 10 and len(bad) == 2  # one NaN batch per epoch
    assert all(moved == finite for _, finite, moved in records)  # skipped <=> unchanged
    assert runner.optim_wrapper.skipped_steps == 2
    assert runner.message_hub.get_info('famt/nonfinite_skipped') == 2
    log = _log(runner)
    assert (f'FAMTNonFiniteLossHook: non-finite loss nan at iteration {bad[1] + 1}: step '
            'skipped, parameters unchanged (2 skipped so far, 1 in a row; stop at 5)') in log
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_nan_loss_stops_with_iteration_loss_and_checkpoint_when_asked(tmp_path):
    cfg = _nan_image_cfg(tmp_path, action='stop')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError, match=r'FAMTNonFiniteLossHook: non-finite loss nan at '
                                           r'iteration \d \(epoch 1\), no AMP; last '
                                           r'checkpoint: none saved yet'):
        runner.train()


def test_diverging_learning_rate_stops_after_consecutive_bad_steps(tmp_path):
    # 1 normal epoch (epoch_1.pth), then lr 1.5e-4 * 1e10 = 1.5e6: AdamW's decoupled decay
    # alone multiplies every weight by -7.5e4 per step, so the loss overflows within a few.
    cfg = _cfg(tmp_path, max_epochs=3, start_epoch=1, custom_imports=IMPORTS)
    cfg.param_scheduler = [dict(type='MultiStepLR', milestones=[1], gamma=1e10, by_epoch=True)]
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError, match=r'5 non-finite steps in a row \(max_consecutive=5\)'
                                           r', stopping: the run diverged. Last one: non-finite '
                                           r'loss (nan|inf) at iteration \d+ \(epoch [23]\), no '
                                           r'AMP; last checkpoint: .*epoch_[12].pth'):
        runner.train()
    assert runner.iter > 5


def test_skip_needs_a_skipping_optim_wrapper_and_amp_scale_is_read(tmp_path):
    cfg = _cfg(tmp_path, max_epochs=1, start_epoch=0)
    cfg.optim_wrapper.type = 'OptimWrapper'
    with pytest.raises(ValueError, match=r"action='skip'\): OptimWrapper applies NaN / inf "
                                         r"gradients.*type='FAMTOptimWrapper'"):
        Runner.from_cfg(cfg).train()
    # The AMP path on CPU: a real GradScaler skips a NaN step and halves its scale.
    if not hasattr(torch.amp, 'GradScaler'):  # torch < 2.3 has CUDA GradScalers only
        return
    lin = torch.nn.Linear(3, 1)
    wrapper = OptimWrapper(torch.optim.SGD(lin.parameters(), lr=0.1))
    assert amp_loss_scale(wrapper) is None and not skips_nonfinite_steps(wrapper)
    wrapper.loss_scaler = scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    before = lin.weight.detach().clone()
    scaler.scale(lin(torch.full((2, 3), float('nan'))).sum()).backward()
    scaler.step(wrapper.optimizer)
    scaler.update()
    assert torch.equal(lin.weight, before)
    assert amp_loss_scale(wrapper) == 512.0 and skips_nonfinite_steps(wrapper)
