"""Checkpoints are complete or absent, through tools/train.py on the shrunk MAE demo: a failed
write keeps the old file, resume skips a truncated latest checkpoint, a SIGKILL while saving
leaves the previous one and resume goes on.

The test-only storage backend below is registered (``force=True``) so that a
``tools/train.py`` subprocess reaches it with ``custom_imports`` of this module.
"""
import glob
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch
from mmengine.fileio import register_backend

import famt_mm  # noqa: F401
from famt_mm.engine.checkpointing import (FAMTAtomicLocalBackend, atomic_write_bytes,
                                          checkpoint_problem, partial_path)
from tests.conftest import MAE_DEMO, REPO, write_tiny_config
from tests.test_engine.fault_helpers import HELPERS

THIS = 'tests.test_engine.test_atomic_checkpoints'
IMPORTS = dict(imports=['famt_mm', HELPERS, THIS], allow_failed_imports=False)


@register_backend('famt_test_stall', force=True)
class FAMTTestStallingBackend(FAMTAtomicLocalBackend):
    """Writes half of the checkpoint named ``stall_on``, says so, then hangs (to be killed)."""

    def __init__(self, stall_on: str = ''):
        self.stall_on = stall_on

    def _write(self, f, data):
        if not self.stall_on or not f.name.endswith(self.stall_on + '.partial'):
            return f.write(data)
        f.write(data[:len(data) // 2])
        f.flush()
        print(f'FAMT-TEST: stalled writing {f.name}', flush=True)
        time.sleep(600)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    atomic_write_bytes(b'old complete bytes', path)

    def disk_full(f, data):
        f.write(data[:3])
        raise OSError(28, 'No space left on device')
    with pytest.raises(OSError, match='No space left'):
        atomic_write_bytes(b'new longer bytes...', path, write=disk_full)
    assert open(path, 'rb').read() == b'old complete bytes'
    assert not osp.exists(partial_path(path))
    with pytest.raises(ValueError, match='local files only'):
        FAMTAtomicLocalBackend().put(b'x', 's3://bucket/epoch_1.pth')


@pytest.fixture(scope='module')
def two_epochs(tmp_path_factory):
    """tools/train.py on the shrunk MAE demo: epoch_1.pth, epoch_2.pth, last_checkpoint."""
    from tools.train import main
    root = tmp_path_factory.mktemp('checkpoint_resume')
    cfg = write_tiny_config(root / 'mae_tiny.py', config=MAE_DEMO, max_epochs=2,
                            custom_imports=IMPORTS)
    main([cfg, '--work-dir', str(root / 'work')])
    return cfg, str(root / 'work')


def _copy_work(two_epochs, tmp_path):
    cfg, work = two_epochs
    dst = str(tmp_path / 'work')
    # without the fixture's log folders: a run started in the same second as the fixture's
    # would get the same timestamped folder name, and _last_log could read the wrong log
    shutil.copytree(work, dst, ignore=lambda d, names: [
        n for n in names if d == work and re.fullmatch(r'\d{8}_\d{6}', n)])
    with open(osp.join(dst, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(dst, 'epoch_2.pth'))
    return cfg, dst


def _last_log(work):
    """The log of the newest run in ``work`` (mmengine: ``<YYYYmmdd_HHMMSS>/<same>.log``)."""
    logs = sorted(glob.glob(osp.join(work, '[0-9]' * 8 + '_' + '[0-9]' * 6, '*.log')))
    return open(logs[-1]).read()


def test_resume_skips_a_truncated_latest_checkpoint(two_epochs, tmp_path):
    from tools.train import main
    cfg, work = _copy_work(two_epochs, tmp_path)
    e1, e2 = osp.join(work, 'epoch_1.pth'), osp.join(work, 'epoch_2.pth')
    data = open(e2, 'rb').read()
    open(e2, 'wb').write(data[:len(data) // 3])  # a crash that cut the file short
    assert checkpoint_problem(e2) is not None and checkpoint_problem(e1) is None
    main([cfg, '--work-dir', work, '--resume', '--cfg-options', 'train_cfg.max_epochs=3'])
    log = _last_log(work)
    assert re.search(rf'WARNING - resume: the latest checkpoint does not load: {re.escape(e2)} '
                     rf'\(.+\); resuming from {re.escape(e1)}, the newest one that does', log)
    assert 'resumed epoch: 1, iter: 5' in log
    assert checkpoint_problem(e2) is None  # rewritten by the resumed run
    assert torch.load(osp.join(work, 'epoch_3.pth'), weights_only=False)['meta']['epoch'] == 3

    # nothing loads: an error naming the files, not a silent start from scratch
    for name in ('epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth'):
        open(osp.join(work, name), 'wb').write(b'')
    with pytest.raises(RuntimeError, match=r'resume: no checkpoint in .* loads: .*epoch_3.pth '
                                           r'\(empty file\).*Remove them to start from scratch'):
        main([cfg, '--work-dir', work, '--resume'])


def test_sigkill_while_saving_leaves_the_previous_checkpoint_and_resume_goes_on(
        two_epochs, tmp_path):
    # Re-training epoch 2 from epoch_1.pth (a resume from an explicit file) and killed while
    # writing epoch_2.pth: mmengine would leave last_checkpoint -> a truncated epoch_2.pth.
    cfg, work = _copy_work(two_epochs, tmp_path)
    e2 = osp.join(work, 'epoch_2.pth')
    before = open(e2, 'rb').read()
    stall = write_tiny_config(tmp_path / 'stall.py', config=MAE_DEMO, max_epochs=2,
                              custom_imports=IMPORTS, **{
                                  'default_hooks.checkpoint.backend_args': dict(
                                      backend='famt_test_stall', stall_on='epoch_2.pth')})
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    out = str(tmp_path / 'run.txt')
    proc = subprocess.Popen([sys.executable, 'tools/train.py', stall, '--work-dir', work,
                             '--resume', osp.join(work, 'epoch_1.pth')], cwd=REPO, env=env,
                            stdout=open(out, 'w'), stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while 'FAMT-TEST: stalled writing' not in open(out).read():
        assert proc.poll() is None and time.time() < deadline, open(out).read()[-3000:]
        time.sleep(0.05)
    assert osp.getsize(partial_path(e2)) < len(before)  # half written, mid-save
    proc.kill()  # SIGKILL
    proc.wait()
    assert open(e2, 'rb').read() == before  # the previous epoch_2.pth, complete
    from tools.train import main
    main([cfg, '--work-dir', work, '--resume', '--cfg-options', 'train_cfg.max_epochs=3'])
    log = _last_log(work)
    assert 'does not load' not in log and 'resumed epoch: 2, iter: 10' in log
    assert not osp.exists(partial_path(osp.join(work, 'epoch_3.pth')))
