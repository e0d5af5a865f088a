"""A file bank through the real Runner: written once per refresh beside the checkpoints, which
reference it; --resume verifies it and restores it bit-identically, or refuses naming it."""
import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

import famt_mm  # noqa: F401
from famt_mm.compat import load_local_checkpoint
from famt_mm.engine import FAMTWeightHook


def _hook(runner):
    return next(h for h in runner.hooks if isinstance(h, FAMTWeightHook))


def _resume_cfg(famt_runner_cfg, ckpt, work_dir, **hook):
    cfg = famt_runner_cfg(max_epochs=3, start_epoch=1, interval=1)
    cfg.custom_hooks[0].update(bank_storage='file', **hook)
    cfg.work_dir, cfg.resume, cfg.load_from = str(work_dir), True, ckpt
    return cfg


def test_file_bank_is_referenced_verified_and_restored(famt_runner_cfg, tmp_path):
    cfg = famt_runner_cfg(max_epochs=3, start_epoch=1, interval=1)
    cfg.custom_hooks[0].update(bank_storage='file', keep_banks=2)
    first = Runner.from_cfg(cfg)
    first.train()
    bank_dir = osp.join(first.work_dir, 'famt_bank')
    assert sorted(os.listdir(bank_dir)) == ['bank_epoch_0001.float16.npy',
                                            'bank_epoch_0002.float16.npy']
    ckpt = f'{first.work_dir}/epoch_2.pth'
    state = load_local_checkpoint(ckpt)['famt']
    assert state['bank'] is None and state['bank_file'] == 'bank_epoch_0001.float16.npy'
    on_disk = np.load(osp.join(bank_dir, state['bank_file']))
    assert on_disk.shape == (40, 4, 4) and state['bank_epoch'] == 1

    second = Runner.from_cfg(_resume_cfg(famt_runner_cfg, ckpt, tmp_path / 'resumed'))
    hook, restored = _hook(second), {}
    original = hook.before_train

    def spy(runner):
        restored['bank'] = hook.bank.clone()
        original(runner)
    hook.before_train = spy
    second.train()
    assert torch.equal(restored['bank'], torch.from_numpy(on_disk))  # bit-identical
    assert hook.refresh_epochs_done == [2]  # epoch 1's bank came from the file
    assert hook.weight_bank.file == osp.join(str(tmp_path / 'resumed'), 'famt_bank',
                                             'bank_epoch_0002.float16.npy')

    # changed, then missing: refused with the file named and the option to recompute
    path = osp.join(bank_dir, state['bank_file'])
    mm = np.load(path, mmap_mode='r+')
    mm[7, 2, 3] = mm[7, 2, 3] * 0.5 + 0.25
    mm.flush()
    del mm
    with pytest.raises(ValueError, match=r'bank file .*bank_epoch_0001.float16.npy has changed '
                       r".*on_mismatch='recompute'"):
        Runner.from_cfg(_resume_cfg(famt_runner_cfg, ckpt, tmp_path / 'r2')).train()
    os.remove(path)
    with pytest.raises(ValueError, match=r'bank_epoch_0001.float16.npy that the checkpoint '
                       r"references is missing .*on_mismatch='recompute'"):
        Runner.from_cfg(_resume_cfg(famt_runner_cfg, ckpt, tmp_path / 'r3')).train()
    third = Runner.from_cfg(_resume_cfg(famt_runner_cfg, ckpt, tmp_path / 'r4',
                                        on_mismatch='recompute'))
    third.train()
    assert _hook(third).refresh_epochs_done == [2]
    assert glob.glob(str(tmp_path / 'r4' / 'famt_bank' / '*.npy'))
