"""Ranks decide together (famt_mm.engine.rank_agreement): a fault injected on ONE rank stops or
heals the whole job within seconds, with 2 and 4 processes (gloo on CPU), never a hang.

The faults are installed inside the worker by tests/test_engine/rank_fault_helpers.py
(``FAMT_TEST_FAULT``); ``SIGKILL`` in the refresh is the small rehearsal of
famt_mm/analysis/rehearsal.py (the killer watches the job's log from outside).
"""
import glob
import multiprocessing
import os
import os.path as osp
import shutil
import subprocess
import time

import pytest
import torch
from mmengine.runner import Runner

from famt_mm.engine.rank_agreement import (RankFailure, all_ranks, any_rank, flagged_ranks,
                                           on_every_rank, rank_problems)
from tests.conftest import FAMT_DEMO, REPO, tiny_cfg, write_tiny_config
from tests.test_engine.rank_fault_helpers import HELPERS
from tests.test_engine.test_distributed_reliability import free_port, hook_cfg
from tests.test_engine.fault_helpers import HELPERS as RELIABILITY_HELPERS

IMPORTS = dict(imports=['famt_mm', HELPERS, RELIABILITY_HELPERS], allow_failed_imports=False)
FAULTS = dict(type='FAMTTestFaults')
TIMEOUT = 300  # the test's own guard; every job here ends in well under a minute
DIST_TIMEOUT = 60  # env_cfg.dist_cfg.timeout: a rank waiting this long would be a failure


def dist_train(cfg, work_dir, nproc=2, fault='', resume=False):
    """``bash tools/dist_train.sh CONFIG nproc`` (returncode, output, seconds)."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PORT=str(free_port()),
               FAMT_TEST_FAULT=fault)
    t0 = time.time()
    proc = subprocess.run(['bash', 'tools/dist_train.sh', cfg, str(nproc), '--work-dir',
                           str(work_dir)] + (['--resume'] if resume else []),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    return proc.returncode, proc.stdout + proc.stderr, time.time() - t0


def config(tmp_path, hooks, name='famt_tiny.py', **options):
    return write_tiny_config(tmp_path / name, config=FAMT_DEMO, custom_hooks=hooks,
                             custom_imports=IMPORTS,
                             **{'env_cfg.dist_cfg.timeout': DIST_TIMEOUT, **options})


# -- the module itself, 4 forked processes -----------------------------------------------------
def _agreement_worker(rank, world, port, queue):
    torch.distributed.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                                         rank=rank, world_size=world)
    try:
        out = dict(flagged=flagged_ranks(rank in (1, 3)), any=any_rank(rank == 2),
                   all=all_ranks(rank != 0), all_true=all_ranks(True), none=any_rank(False),
                   problems=rank_problems('disk full' if rank == 1 else None),
                   result=on_every_rank(lambda: rank * 10, 'a fine step'))

        def fails_on_rank_1():
            if rank == 1:
                raise OSError('cannot read /data/x.npy')
            return 'ok'
        try:
            on_every_rank(fails_on_rank_1, 'reading the bank')
            out['raised'] = None
        except RankFailure as e:
            out['raised'] = str(e)
        queue.put((rank, out))
    finally:
        torch.distributed.destroy_process_group()


def test_agreement_functions_agree_on_4_processes():
    ctx = multiprocessing.get_context('fork')
    queue, port = ctx.Queue(), free_port()
    procs = [ctx.Process(target=_agreement_worker, args=(r, 4, port, queue)) for r in range(4)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for rank, out in results.items():
        assert out['flagged'] == [1, 3]
        assert out['any'] is True and out['all'] is False and out['all_true'] is True
        assert out['none'] is False
        assert out['problems'] == {1: 'disk full'}
        assert out['result'] == rank * 10
        assert out['raised'] == ('reading the bank failed on rank(s) [1] (rank 1: OSError: '
                                 'cannot read /data/x.npy); stopping every rank')


def test_agreement_in_one_process_is_local():
    assert flagged_ranks(True) == [0] and flagged_ranks(False) == []
    assert any_rank(True) and all_ranks(True) and not any_rank(False)
    assert rank_problems(None) == {} and rank_problems('x') == {0: 'x'}
    with pytest.raises(KeyError, match='the original'):  # unchanged in one process
        on_every_rank(lambda: {}['the original'], 'a step')


# -- faults on one rank of a training job ------------------------------------------------------
def test_nan_loss_on_rank_1_only_stops_both_ranks(tmp_path):
    cfg = config(tmp_path, [hook_cfg(start_epoch=1), FAULTS],
                 **{'default_hooks.nonfinite.action': 'stop'})
    rc, out, seconds = dist_train(cfg, tmp_path / 'work', fault='nan_loss:1:2')
    assert rc != 0
    # rank 0's loss was finite: it stops because rank 1's was not, in the same iteration
    assert 'FAMTNonFiniteLossHook: non-finite loss on rank(s) [1] (this rank, 0: ' in out
    assert 'non-finite loss on rank(s) [1] (this rank, 1: nan) at iteration 3' in out
    assert seconds < DIST_TIMEOUT + 60


def test_an_exception_in_rank_1s_refresh_stops_all_4_ranks(tmp_path):
    cfg = config(tmp_path, [hook_cfg(start_epoch=0), FAULTS],
                 **{'train_dataloader.dataset.num_samples': 16})
    rc, out, seconds = dist_train(cfg, tmp_path / 'work', nproc=4, fault='refresh_raises:1')
    assert rc != 0
    assert ('RankFailure: FAMT refresh before epoch 1 failed on rank(s) [1] (rank 1: '
            'RuntimeError: injected failure in the refresh of rank 1); stopping every rank'
            ) in out
    assert 'Timed out' not in out and seconds < DIST_TIMEOUT + 60
    assert not glob.glob(str(tmp_path / 'work' / '*.pth'))  # no rank trained on


def _file_bank_checkpoint(tmp_path):
    """One process, 2 epochs, file bank of epoch 1 (refresh every 2 epochs from epoch 1):
    epoch_2.pth references famt_bank/bank_epoch_0001.float16.npy."""
    cfg = tiny_cfg(tmp_path / 'work', max_epochs=2, start_epoch=1, interval=2)
    cfg.custom_hooks[0].update(bank_storage='file')
    Runner.from_cfg(cfg).train()
    return str(tmp_path / 'work')


@pytest.mark.parametrize('on_mismatch', ['error', 'recompute'])
def test_bank_file_unreadable_on_rank_1_only(tmp_path, on_mismatch):
    work = _file_bank_checkpoint(tmp_path)
    # rank 1 finds a copy cut short (a half-copied work dir on its node); rank 0 the good one
    name = 'bank_epoch_0001.float16.npy'
    damaged = osp.join(work, 'famt_bank_damaged', name)
    os.makedirs(osp.dirname(damaged))
    shutil.copy(osp.join(work, 'famt_bank', name), damaged)
    os.truncate(damaged, os.path.getsize(damaged) - 100)
    # epoch 2 is no refresh epoch (interval 2): only the restore decides whether to refresh
    hook = hook_cfg(type='FAMTTestBankDirOnRank', start_epoch=1, interval=2, batch_size=8,
                    bank_storage='file', on_mismatch=on_mismatch)
    cfg = config(tmp_path, [hook, dict(type='FAMTTestDumpBank')], max_epochs=3)
    rc, out, seconds = dist_train(cfg, work, resume=True)
    problem = f'rank 1: the FAMT weight bank file {damaged} is '
    assert problem in out and 'it was cut short' in out
    if on_mismatch == 'error':
        assert rc != 0
        assert "set FAMTWeightHook(on_mismatch='recompute') to compute a new bank" in out
    else:
        assert rc == 0, out[-6000:]
        assert 'the bank will be recomputed on every rank' in out
        ranks = [torch.load(osp.join(work, f'famt_bank_rank{r}.pth')) for r in (0, 1)]
        assert [r['refreshes'] for r in ranks] == [[2], [2]]  # both, not rank 1 alone
        assert torch.equal(ranks[0]['bank'], ranks[1]['bank'])
    assert seconds < DIST_TIMEOUT + 90


def test_sigkill_in_the_bank_write_then_resume(tmp_path):
    # refreshes before epochs 1 and 2; rank 0 is SIGKILLed in the middle of writing the second
    hook = hook_cfg(start_epoch=1, bank_storage='file', keep_banks=1)
    cfg = config(tmp_path, [hook, FAULTS, dict(type='FAMTTestDumpBank')], max_epochs=3,
                 **{'train_dataloader.dataset.num_samples': 16})
    work = tmp_path / 'work'
    rc, out, seconds = dist_train(cfg, work, fault='kill_in_bank_write:0:2')
    assert rc != 0 and 'Signal 9 (SIGKILL) received' in out
    assert seconds < DIST_TIMEOUT + 60  # rank 1 did not wait for the dead rank 0
    bank_dir = work / 'famt_bank'
    assert sorted(os.listdir(bank_dir)) == ['bank_epoch_0001.float16.npy',
                                            'bank_epoch_0002.float16.npy.tmp']
    rc, out, _ = dist_train(cfg, work, resume=True)
    assert rc == 0, out[-6000:]
    assert 'bank_epoch_0002.float16.npy.tmp, left by an interrupted bank write' in out
    assert 'FAMT: restored the weight bank of epoch 2' in out
    # keep_banks=1, yet epoch_2.pth's bank (epoch 1) stays beside the new one
    assert sorted(os.listdir(bank_dir)) == ['bank_epoch_0001.float16.npy',
                                            'bank_epoch_0002.float16.npy']
    ranks = [torch.load(work / f'famt_bank_rank{r}.pth') for r in (0, 1)]
    assert [r['refreshes'] for r in ranks] == [[2], [2]]
    assert torch.equal(ranks[0]['bank'], ranks[1]['bank'])


def test_small_rehearsal_sigkill_in_the_refresh_then_resume(tmp_path):
    from famt_mm.analysis.rehearsal import rehearse
    result = rehearse(str(tmp_path), nproc=2, images=48, dist_timeout=DIST_TIMEOUT)
    assert not result.problems, result.summary(2, 48) + result.killed.output[-3000:]
    assert result.killed.seconds_after_kill < DIST_TIMEOUT
    assert len(result.rank_sha1) == 2 and result.file_sha1.startswith(result.rank_sha1[0])
