"""Set-up mistakes stop at start, named, with the fix: a second FAMTWeightHook, a visualisation
hook without the weight hook, FAMT settings of the wrong type; and bank-file faults on resume
(short / corrupt file: named, on_mismatch='recompute' recomputes; keep_banks=1 keeps the bank
the newest checkpoint references)."""
import os
import os.path as osp

import pytest
from mmengine.runner import Runner

from famt_mm.compat import load_local_checkpoint
from famt_mm.engine import FAMTWeightHook
from famt_mm.models.mask_generator import FAMTMaskGenerator


def _hook(runner):
    return next(h for h in runner.hooks if isinstance(h, FAMTWeightHook))


def test_a_second_weight_hook_is_refused_with_the_fix(famt_runner_cfg):
    cfg = famt_runner_cfg(max_epochs=2)
    cfg.custom_hooks = cfg.custom_hooks + [dict(type='FAMTWeightHook', start_epoch=1)]
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r"2 FAMTWeightHooks in this run .*Keep one: set "
                       r"custom_hooks = \[dict\(type='FAMTWeightHook', .*_base_.custom_hooks"):
        runner.train()
    assert runner.iter == 0


def test_a_visualization_hook_without_the_weight_hook_is_refused(famt_runner_cfg):
    cfg = famt_runner_cfg(max_epochs=2)
    cfg.custom_hooks = [dict(type='FAMTVisualizationHook', indices=[0])]
    with pytest.raises(ValueError, match=r"FAMTVisualizationHook draws after FAMTWeightHook "
                       r"refreshes: add dict\(type='FAMTWeightHook', ...\) to custom_hooks"):
        Runner.from_cfg(cfg).train()


@pytest.mark.parametrize('kwargs, match', [
    (dict(mask_ratio='0.45'), "mask_ratio='0.45' is a str, not a number"),
    (dict(throw_ratio=None), 'throw_ratio=None is a NoneType, not a number'),
    (dict(eps=True), 'eps=True is a bool, not a number'),
])
def test_mask_generator_settings_of_the_wrong_type_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FAMTMaskGenerator(**kwargs)


@pytest.mark.parametrize('kwargs, match', [
    (dict(start_epoch='40'), "start_epoch='40' is a str, must be an int >= 0"),
    (dict(interval=2.0), 'interval=2.0 is a float, must be an int >= 1'),
    (dict(num_workers='4'), "num_workers='4' is a str"),
    (dict(batch_size=True), 'batch_size=True is a bool'),
    (dict(keep_banks='1'), "keep_banks='1' must be an int"),
])
def test_hook_settings_of_the_wrong_type_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FAMTWeightHook(**kwargs)


def test_a_wrong_type_in_a_config_stops_at_build(famt_runner_cfg):
    cfg = famt_runner_cfg(max_epochs=2)
    cfg.model.mask_generator.mask_ratio = '0.45'
    with pytest.raises(ValueError, match="mask_ratio='0.45' is a str"):
        Runner.from_cfg(cfg)


def _resume(famt_runner_cfg, work, ckpt, **hook):
    cfg = famt_runner_cfg(max_epochs=3, start_epoch=1, interval=1)
    cfg.custom_hooks[0].update(bank_storage='file', **hook)
    cfg.work_dir, cfg.resume, cfg.load_from = str(work), True, ckpt
    return Runner.from_cfg(cfg)


def test_short_bank_file_is_named_and_recomputed_and_keep_banks_1_keeps_it(famt_runner_cfg,
                                                                            tmp_path):
    cfg = famt_runner_cfg(max_epochs=3, start_epoch=1, interval=1)
    cfg.custom_hooks[0].update(bank_storage='file', keep_banks=1)
    first = Runner.from_cfg(cfg)
    first.train()
    bank_dir = osp.join(first.work_dir, 'famt_bank')
    # the refresh before epoch 2 came after epoch_2.pth, which references the bank of epoch 1:
    # keep_banks=1 must not delete it
    ckpt = osp.join(first.work_dir, 'epoch_2.pth')
    name = load_local_checkpoint(ckpt)['famt']['bank_file']
    assert name == 'bank_epoch_0001.float16.npy'
    assert sorted(os.listdir(bank_dir)) == [name, 'bank_epoch_0002.float16.npy']
    resumed = _resume(famt_runner_cfg, tmp_path / 'ok', ckpt, keep_banks=1)
    resumed.train()
    assert _hook(resumed).refresh_epochs_done == [2]

    path = osp.join(bank_dir, name)
    os.truncate(path, os.path.getsize(path) - 64)  # cut short, as by a full disk
    with pytest.raises(ValueError, match=f'{path} is .* bytes.*cut short.* an intact bank file, '
                       r"or set FAMTWeightHook\(on_mismatch='recompute'\)"):
        _resume(famt_runner_cfg, tmp_path / 'r1', ckpt).train()
    with open(path, 'r+b') as f:
        f.write(b'garbage!')  # the header destroyed
    healed = _resume(famt_runner_cfg, tmp_path / 'r2', ckpt, on_mismatch='recompute')
    healed.train()
    assert _hook(healed).refresh_epochs_done == [2]
