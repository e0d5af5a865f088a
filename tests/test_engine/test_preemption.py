"""A FAMT run killed with SIGKILL (mid-epoch, then mid-refresh) and restarted with --resume.

tools/train.py runs in a subprocess as a user (or a preempting scheduler) would see it; the
test-only hook / transform of fault_helpers hold the run (a hang before an
iteration, a hang inside the refresh pass) where the kill must land, whatever the load.
"""
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import time

import torch

from famt_mm.compat import load_local_checkpoint
from tests.conftest import FAMT_DEMO, REPO, write_tiny_config
from tests.test_engine.fault_helpers import CUSTOM_IMPORTS

TIMEOUT = 240  # seconds for one process, generous for a loaded 2-core machine


def start_train(cfg, work_dir, out_path, resume=False):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    args = [sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir]
    if resume:
        args.append('--resume')
    out = open(out_path, 'w')
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def kill_when(proc, out_path, pattern):
    """SIGKILL ``proc`` as soon as its output matches ``pattern``; return the output."""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        text = open(out_path).read()
        if re.search(pattern, text):
            proc.kill()  # SIGKILL: no handler, no checkpoint, like a preempted node
            proc.wait()
            return text
        if proc.poll() is not None:
            raise AssertionError(f'the run ended ({proc.returncode}) before {pattern!r}:\n'
                                 f'{text[-4000:]}')
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f'no {pattern!r} within {TIMEOUT}s:\n{open(out_path).read()[-4000:]}')


def test_sigkill_mid_epoch_and_mid_refresh_then_resume(tmp_path):
    # 4 epochs of 5 iterations: random epoch 0, refreshes before epochs 1 and 3. Each kill lands
    # where a test hook holds the run (no race with the run's speed): run 1 hangs before global
    # iteration 11 (the 2nd of 1-based epoch [3]), run 2 inside the refresh before epoch 3.
    def config(name, refresh_hold=(), hooks=()):
        weight_hook = dict(
            type='FAMTWeightHook', start_epoch=1, interval=2, batch_size=1, num_workers=0,
            log_interval=1, refresh_pipeline=list(refresh_hold) + [
                dict(type='Resize', scale=(32, 32), backend='pillow', interpolation='bicubic'),
                dict(type='PackInputs', meta_keys=('sample_idx', ))])
        return write_tiny_config(tmp_path / f'{name}.py', config=FAMT_DEMO, max_epochs=4,
                                 start_epoch=1, interval=2,
                                 custom_hooks=[weight_hook] + list(hooks),
                                 custom_imports=CUSTOM_IMPORTS)
    work = str(tmp_path / 'work')
    ckpt = lambda e: osp.join(work, f'epoch_{e}.pth')  # noqa: E731

    # 1) killed in the middle of epoch 2 (1-based [3]), a FAMT epoch between refreshes
    out1 = str(tmp_path / 'run1.txt')
    cfg1 = config('run1', hooks=[dict(type='FAMTTestHangOnRank', rank=0, iter=11)])
    log1 = kill_when(start_train(cfg1, work, out1), out1, r'Epoch\(train\) \[3\]\[1/5\]')
    assert 'FAMT refresh before epoch 2:' in log1
    assert osp.isfile(ckpt(2)) and not osp.isfile(ckpt(3))
    bank_e1 = load_local_checkpoint(ckpt(2))['famt']
    assert bank_e1['bank_epoch'] == 1

    # 2) resumed: same bank, same phase; killed inside the refresh before epoch 4
    out2 = str(tmp_path / 'run2.txt')
    cfg2 = config('run2', refresh_hold=[dict(type='FAMTTestHangAfter', samples=2)])
    log2 = kill_when(start_train(cfg2, work, out2, resume=True), out2,
                     'FAMT-TEST: hanging after 2 samples')
    assert re.search(r'FAMT refresh \(epoch 4\): 2/40 images', log2)
    assert f'Auto resumed from the latest checkpoint {ckpt(2)}' in log2
    assert 'resumed epoch: 2, iter: 10' in log2
    assert 'FAMT: restored the weight bank of epoch 2 ((40, 4, 4), torch.float16)' in log2
    assert 'FAMT: epoch 3 trains with FAMT masking and throwing (bank of epoch 2)' in log2
    assert 'Epoch(train) [3][1/5]' in log2 and 'Epoch(train) [2]' not in log2
    assert 'FAMT refresh before epoch' not in log2  # epoch 2 reused the restored bank
    assert 'FAMT refresh before epoch 4' not in log2  # killed mid-refresh
    assert osp.isfile(ckpt(3)) and not osp.isfile(ckpt(4))
    saved = load_local_checkpoint(ckpt(3))['famt']
    assert saved['bank_epoch'] == 1
    assert torch.equal(saved['bank'], bank_e1['bank'])  # bit-identical after the resume

    # 3) resumed again: the interrupted refresh is redone, on schedule, and the run ends
    out3 = str(tmp_path / 'run3.txt')
    proc = start_train(config('run3'), work, out3, resume=True)
    assert proc.wait(timeout=TIMEOUT) == 0, open(out3).read()[-4000:]
    log3 = open(out3).read()
    assert 'resumed epoch: 3, iter: 15' in log3
    assert 'FAMT: restored the weight bank of epoch 2' in log3
    assert re.findall(r'FAMT refresh before epoch (\d+)', log3) == ['4']
    final = load_local_checkpoint(ckpt(4))
    assert final['famt']['bank_epoch'] == 3
    assert final['meta']['epoch'] == 4 and final['meta']['iter'] == 20
    assert not torch.equal(final['famt']['bank'], bank_e1['bank'])  # a new, real refresh
    # Every process wrote its own log in the work dir (mmengine: one folder per start).
    assert len(glob.glob(osp.join(work, '*', '*.log'))) == 3
