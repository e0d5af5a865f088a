"""Reliability, round 2 (issue 13, items 2-5), through the real Runner / tools on the shrunk
demo configs: a FAMT model without its hook, crash-proof checkpoints and resume, NaN / inf
losses, converters writing onto their source, unreadable images, wrong-architecture files.

The test-only components below are registered (``force=True``) so that a ``tools/train.py``
subprocess reaches them with ``custom_imports`` of this module.
"""
import glob
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import torch
from mmengine.fileio import register_backend
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS, MODELS

import famt_mm  # noqa: F401
from famt_mm.engine.checkpointing import (FAMTAtomicLocalBackend, atomic_write_bytes,
                                          checkpoint_problem, partial_path)
from famt_mm.engine.hooks.nonfinite_loss_hook import amp_loss_scale, skips_nonfinite_steps
from tests.conftest import FAMT_DEMO, MAE_DEMO, REPO, TINY_OPTIONS, write_tiny_config
from tests.test_engine.test_reliability_helpers import HELPERS

THIS = 'tests.test_engine.test_reliability_round2'
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
    cfg.experiment_name = f'famt_round2_{uuid.uuid4().hex[:8]}'  # own logger per Runner
    return cfg


def _log(runner):
    return open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()


# -- item 2: a FAMT model without FAMTWeightHook -------------------------------------------
def test_famt_model_without_its_hook_stops_before_the_first_step(tmp_path):
    cfg = _cfg(tmp_path, max_epochs=2)
    cfg.custom_hooks = []  # a derived config's own (here: empty) list replaced the base's
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError, match=r'FAMTMAE is training without FAMTWeightHook.*'
                                           r'plain MAE.*replaces the base config.*'
                                           r"dict\(type='FAMTWeightHook'.*"
                                           r'custom_hooks = _base_.custom_hooks \+ \[...\]'):
        runner.train()
    assert runner.iter == 0


# -- item 3: checkpoints complete or absent; resume skips a broken latest one ----------------
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
    root = tmp_path_factory.mktemp('round2_resume')
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


# -- item 4: non-finite loss ------------------------------------------------------------
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


# -- item 5: converters, unreadable images, wrong architectures --------------------------
@pytest.fixture(scope='module')
def tiny_pretrain(tmp_path_factory):
    """A (freshly initialised) tiny FAMTMAE saved as mmengine saves a pre-training."""
    from mmengine.config import Config
    cfg = Config.fromfile(FAMT_DEMO)
    cfg.merge_from_dict({k: v for k, v in TINY_OPTIONS.items() if k.startswith('model.')})
    model = MODELS.build(cfg.model)
    path = str(tmp_path_factory.mktemp('tiny_pretrain') / 'epoch_1.pth')
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), path)
    return path


def test_converter_refuses_a_destination_that_is_the_source(tiny_pretrain, tmp_path):
    from tools.model_converters.famt2target import main
    src = str(tmp_path / 'src.pth')
    shutil.copy(tiny_pretrain, src)
    before = open(src, 'rb').read()
    os.symlink(src, tmp_path / 'link.pth')
    os.link(src, tmp_path / 'hard.pth')
    with pytest.raises(SystemExit, match=r'refusing to write .*link.pth: it is the source '
                                         r'checkpoint .*src.pth \(both resolve to'):
        main([src, str(tmp_path / 'link.pth'), '--target', 'mmpretrain'])
    with pytest.raises(SystemExit, match=r'hard.pth: it is the source checkpoint .*\(a hard '
                                         r'link: same file, inode'):
        main([src, str(tmp_path / 'hard.pth'), '--target', 'mmdet'])
    assert open(src, 'rb').read() == before
    main([src, str(tmp_path / 'out.pth'), '--target', 'mmseg'])  # a real destination works


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


def test_wrong_architecture_is_named_by_the_vis_tool_and_strict_loader(tiny_pretrain):
    from mmpretrain.models.backbones import VisionTransformer

    from famt_mm.transfer.checkpoint import load_strict_pretrained
    from tools.visualization.vis_famt_masks import main
    with pytest.raises(SystemExit) as err:
        main([FAMT_DEMO, tiny_pretrain, '--device', 'cpu'])
    assert str(err.value) == (
        f'error: {tiny_pretrain} does not fit the config: ViT checkpoint (32-d, 2 blocks, '
        'patch 8), ViT-T model (192-d, 6 blocks, patch 8); pass the config the checkpoint '
        'was trained with')
    vit = VisionTransformer(arch='deit-tiny', img_size=32, patch_size=16)
    with pytest.raises(ValueError) as err:
        load_strict_pretrained(vit, tiny_pretrain, prefix='backbone.')
    assert ('  wrong architecture: ViT checkpoint (32-d, 2 blocks, patch 8), ViT-T model '
            '(192-d, 12 blocks, patch 16)') in str(err.value).splitlines()
