"""tools/dist_train.sh with 2 processes (torchrun, gloo on CPU): consistent banks on every
rank, and a failing rank stops the whole job (no hang), in training and in the refresh pass.

What ends the job when one rank dies: with gloo, the surviving rank's pending collective
(DDP's all-reduce, the refresh's all_gather) fails at once with "Connection closed by peer",
and torchrun's agent also sends SIGTERM to the remaining workers and exits non-zero. A rank
that hangs without dying (or a dead peer under NCCL) is only caught by the collective timeout
(torch's default for the process group: 30 minutes for gloo), which the config sets with
``env_cfg.dist_cfg.timeout`` (seconds, as in mmengine) on CPU and GPU alike.
"""
import glob
import os
import os.path as osp
import socket
import subprocess
import time

import torch
from mmengine.runner import Runner

from famt_mm.compat import load_local_checkpoint
from famt_mm.engine import FAMTWeightHook
from tests.conftest import FAMT_DEMO, REPO, tiny_cfg, write_tiny_config
from tests.test_engine.fault_helpers import CUSTOM_IMPORTS

TIMEOUT = 300


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(cfg, work_dir, timeout=TIMEOUT):
    """``bash tools/dist_train.sh CONFIG 2 --work-dir W``: (returncode, output, seconds)."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PORT=str(free_port()))
    t0 = time.time()
    proc = subprocess.run(['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', work_dir],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr, time.time() - t0


def hook_cfg(**kwargs):
    return dict(dict(type='FAMTWeightHook', start_epoch=0, interval=1, batch_size=1,
                     num_workers=0), **kwargs)


def test_both_ranks_hold_the_bank_of_a_one_process_refresh(tmp_path):
    # Refresh before epoch 1, i.e. with the weights DDP trained in epoch 0 (= epoch_1.pth).
    # 21 images: unequal shards (11 + 10); refresh batch 1 so that one process computes
    # every image with the same tensor shapes.
    hooks = [hook_cfg(start_epoch=1), dict(type='FAMTTestDumpBank')]
    cfg = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO, max_epochs=2,
                            custom_hooks=hooks, custom_imports=CUSTOM_IMPORTS,
                            **{'train_dataloader.dataset.num_samples': 21,
                               'train_dataloader.batch_size': 4})
    work = str(tmp_path / 'work')
    rc, out, _ = dist_train(cfg, work)
    assert rc == 0, out[-6000:]
    log = open(glob.glob(osp.join(work, '*', '*.log'))[0]).read()
    assert 'Distributed training: True' in log and '11/11 images on this rank' in log
    assert 'FAMT refresh: the 2 ranks hold the same bank (SHA-1 ' in log
    ranks = [torch.load(osp.join(work, f'famt_bank_rank{r}.pth')) for r in (0, 1)]
    assert [r['refreshes'] for r in ranks] == [[1], [1]]
    assert torch.equal(ranks[0]['bank'], ranks[1]['bank'])
    assert torch.equal(ranks[0]['bank'], load_local_checkpoint(
        osp.join(work, 'epoch_2.pth'))['famt']['bank'])

    # The same refresh in one process, on the checkpoint DDP wrote before it.
    one = tiny_cfg(tmp_path / 'one', max_epochs=2, start_epoch=1, interval=1,
                   custom_hooks=[hook_cfg(start_epoch=1)],
                   **{'train_dataloader.dataset.num_samples': 21})
    one.load_from = osp.join(work, 'epoch_1.pth')
    runner = Runner.from_cfg(one)
    runner.load_or_resume()
    hook = next(h for h in runner.hooks if isinstance(h, FAMTWeightHook))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the torchrun workers (OMP_NUM_THREADS=1)
    try:
        hook.refresh(runner)
    finally:
        torch.set_num_threads(threads)
    assert hook.bank.shape == (21, 4, 4)
    assert torch.equal(hook.bank, ranks[0]['bank'])
    assert hook.bank.float().std(0).mean() > 1e-3  # real maps, not uniform fallbacks


def test_ranks_with_different_banks_stop_the_job(tmp_path):
    # The refresh's gather hands rank 1 a bank that differs in one value.
    cfg = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO, max_epochs=1,
                            custom_hooks=[hook_cfg(type='FAMTTestDivergentBankHook')],
                            custom_imports=CUSTOM_IMPORTS,
                            **{'train_dataloader.dataset.num_samples': 8})
    rc, out, _ = dist_train(cfg, str(tmp_path / 'work'))
    assert rc != 0
    assert 'FAMT refresh: the 2 ranks hold different weight banks' in out
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))  # no epoch was trained


def test_a_rank_failing_in_training_stops_the_job(tmp_path):
    hooks = [hook_cfg(start_epoch=1), dict(type='FAMTTestFailOnRank', rank=1, iter=2)]
    cfg = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO, max_epochs=2,
                            custom_hooks=hooks, custom_imports=CUSTOM_IMPORTS)
    rc, out, seconds = dist_train(cfg, str(tmp_path / 'work'))
    assert rc != 0
    assert 'injected failure on rank 1 at iteration 2' in out
    assert 'ChildFailedError' in out  # torchrun reports it and ends the other rank
    assert seconds < TIMEOUT


def test_a_rank_failing_in_the_refresh_does_not_leave_the_other_waiting(tmp_path):
    # Image 1 is in rank 1's shard; rank 0 finishes its shard and waits in all_gather.
    hook = hook_cfg(on_bad_image='fail', refresh_pipeline=[
        dict(type='FAMTTestFailOnIndex', indices=[1]),
        dict(type='Resize', scale=(32, 32), backend='pillow', interpolation='bicubic'),
        dict(type='PackInputs', meta_keys=('sample_idx', ))])
    cfg = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO, max_epochs=1,
                            custom_hooks=[hook], custom_imports=CUSTOM_IMPORTS,
                            **{'train_dataloader.dataset.num_samples': 8})
    rc, out, seconds = dist_train(cfg, str(tmp_path / 'work'))
    assert rc != 0
    assert ("FAMT refresh: cannot read sample 1 (synthetic://train/1): OSError: "
            'FAMTTestFailOnIndex: cannot read sample 1 on rank 1') in out
    assert "on_bad_image='skip'" in out
    assert seconds < TIMEOUT


def test_a_hanging_rank_ends_the_job_after_the_configured_timeout(tmp_path):
    hooks = [hook_cfg(start_epoch=1), dict(type='FAMTTestHangOnRank', rank=1, iter=2)]
    cfg = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO, max_epochs=2,
                            custom_hooks=hooks, custom_imports=CUSTOM_IMPORTS,
                            **{'env_cfg.dist_cfg.timeout': 10})
    rc, out, seconds = dist_train(cfg, str(tmp_path / 'work'), timeout=240)
    assert rc != 0
    assert 'ChildFailedError' in out
    assert seconds < 200  # not torch's 30-minute default
