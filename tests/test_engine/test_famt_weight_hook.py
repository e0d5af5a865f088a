"""FAMTWeightHook through the real mmengine Runner on the shrunk demo config."""
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.runner import Runner

import famt_mm  # noqa: F401
from famt_mm.compat import load_local_checkpoint
from famt_mm.engine import FAMTWeightHook
from famt_mm.models.famt_weights import quantize_weights


def famt_hook(runner):
    return next(h for h in runner.hooks if isinstance(h, FAMTWeightHook))


class PhaseProbe:
    """Records, per epoch, whether FAMT masking was on (read inside the train step)."""

    def __init__(self, runner):
        self.phases = {}
        gen = runner.model.mask_generator
        original = gen.sample

        def sample(*args, **kwargs):
            self.phases[runner.epoch] = gen.famt_active
            return original(*args, **kwargs)
        gen.sample = sample


def test_refreshes_exactly_at_scheduled_epochs_and_never_after_the_last(famt_runner_cfg):
    runner = Runner.from_cfg(famt_runner_cfg(max_epochs=5, start_epoch=1, interval=2))
    probe = PhaseProbe(runner)
    runner.train()
    hook = famt_hook(runner)
    assert hook.refresh_epochs_done == [1, 3]  # not 5: there is no epoch 5
    assert probe.phases == {0: False, 1: True, 2: True, 3: True, 4: True}
    assert hook.bank.shape == (40, 4, 4) and hook.bank.dtype == torch.float16
    assert hook.bank_epoch == 3
    ckpt = load_local_checkpoint(f'{runner.work_dir}/epoch_5.pth')
    assert torch.equal(ckpt['famt']['bank'], hook.bank)


def test_schedule_arithmetic():
    hook = FAMTWeightHook(start_epoch=40, interval=40)
    assert [e for e in range(400) if hook.is_refresh_epoch(e, 400)] == list(range(40, 400, 40))
    hook = FAMTWeightHook(start_epoch=0, interval=3)
    assert [e for e in range(7) if hook.is_refresh_epoch(e, 7)] == [0, 3, 6]


def test_bank_reflects_the_encoder(famt_runner_cfg):
    runner = Runner.from_cfg(famt_runner_cfg(max_epochs=1, start_epoch=0, interval=1))
    runner.train()
    hook = famt_hook(runner)
    bank = hook.bank.float().flatten(1)
    # Maps differ across images (not a constant fallback) and each has max 1.
    assert bank.std(0).mean() > 1e-3
    torch.testing.assert_close(bank.amax(1), torch.ones(40))
    # Each row is its own image's map: refresh again with the trained encoder and
    # compare row 5 with image 5 computed directly.
    hook.refresh(runner)
    model = runner.model
    data = model.data_preprocessor(default_collate([hook._refresh_loader.dataset[5]]), False)
    w, _ = model.compute_famt_weights(data['inputs'])
    assert torch.equal(hook.bank[5], quantize_weights(w, 'float16')[0])
    assert not torch.equal(hook.bank[5], hook.bank[6])


def test_resume_restores_bank_and_phase_bit_identically(famt_runner_cfg, tmp_path):
    cfg = famt_runner_cfg(max_epochs=4, start_epoch=1, interval=2)
    first = Runner.from_cfg(cfg)
    first.train()
    saved = load_local_checkpoint(f'{first.work_dir}/epoch_2.pth')
    final = load_local_checkpoint(f'{first.work_dir}/epoch_4.pth')

    cfg2 = famt_runner_cfg(max_epochs=4, start_epoch=1, interval=2)
    cfg2.work_dir = str(tmp_path / 'resumed')
    cfg2.resume = True
    cfg2.load_from = f'{first.work_dir}/epoch_2.pth'
    second = Runner.from_cfg(cfg2)
    probe = PhaseProbe(second)
    restored = {}
    hook = famt_hook(second)
    original = hook.before_train

    def spy(runner):
        restored['bank'] = None if hook.bank is None else hook.bank.clone()
        restored['iter'] = runner.iter
        original(runner)
    hook.before_train = spy
    second.train()
    assert torch.equal(restored['bank'], saved['famt']['bank'])
    assert restored['iter'] == 2 * 5  # 40 images / batch 8 = 5 iterations per epoch
    assert probe.phases == {2: True, 3: True}
    assert hook.refresh_epochs_done == [3]  # epoch 1's refresh came from the checkpoint
    assert second.iter == 4 * 5
    # Epoch 3's refresh ran on the resumed model: same schedule as the first run.
    assert final['famt']['bank_epoch'] == 3
    assert hook.bank_epoch == 3


def test_resume_with_another_dataset_fails_loudly_or_recomputes(famt_runner_cfg, tmp_path):
    first = Runner.from_cfg(famt_runner_cfg(max_epochs=2, start_epoch=1, interval=1))
    first.train()
    ckpt = f'{first.work_dir}/epoch_2.pth'

    cfg = famt_runner_cfg(max_epochs=3, start_epoch=1, interval=5)
    cfg.train_dataloader.dataset.num_samples = 48
    cfg.work_dir = str(tmp_path / 'other')
    cfg.resume, cfg.load_from = True, ckpt
    with pytest.raises(ValueError, match='computed on 40 images but the training set has 48'):
        Runner.from_cfg(cfg).train()

    cfg = famt_runner_cfg(max_epochs=3, start_epoch=1, interval=5)
    cfg.train_dataloader.dataset.seed = 123  # same size, other images
    cfg.work_dir = str(tmp_path / 'other2')
    cfg.resume, cfg.load_from = True, ckpt
    cfg.custom_hooks[0]['on_mismatch'] = 'recompute'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert famt_hook(runner).refresh_epochs_done == [2]  # recomputed, not silently reused


@pytest.mark.parametrize('hook_kwargs, match', [
    (dict(start_epoch=5), 'never start'),
    (dict(refresh_pipeline=[dict(type='RandomFlip', prob=0.5), dict(type='PackInputs')]),
     'must not augment'),
    (dict(interval=0), 'interval'),
])
def test_start_up_validation(famt_runner_cfg, hook_kwargs, match):
    cfg = famt_runner_cfg(max_epochs=2)
    cfg.custom_hooks[0].update(hook_kwargs)
    with pytest.raises(ValueError, match=match):
        Runner.from_cfg(cfg).train()


def test_pipeline_without_crop_box_is_refused(famt_runner_cfg):
    cfg = famt_runner_cfg(max_epochs=2)
    cfg.train_dataloader.dataset.pipeline[0]['type'] = 'RandomResizedCrop'
    with pytest.raises(ValueError, match='does not record the crop box'):
        Runner.from_cfg(cfg).train()
