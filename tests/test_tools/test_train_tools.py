"""tools/train.py and tools/test.py as a user runs them (subprocesses, real Runner)."""
import glob
import os.path as osp

import pytest
import torch

from famt_mm.compat import load_local_checkpoint
from tests.conftest import MAE_DEMO, run_tool, write_tiny_config


def last_meta(work_dir, name):
    ckpt = load_local_checkpoint(osp.join(work_dir, name))
    return ckpt['meta']['epoch'], ckpt['meta']['iter']


def test_train_writes_a_checkpoint_and_resume_continues(tmp_path):
    cfg = write_tiny_config(tmp_path / 'mae_tiny.py', config=MAE_DEMO, max_epochs=2)
    work = str(tmp_path / 'work')
    # A run that stopped after its first checkpoint...
    run_tool(['tools/train.py', cfg, '--work-dir', work, '--cfg-options',
              'train_cfg.max_epochs=1'])
    assert last_meta(work, 'epoch_1.pth') == (1, 5)
    first = load_local_checkpoint(osp.join(work, 'epoch_1.pth'))['state_dict']
    # ... is continued with --resume from the right epoch and iteration.
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work, '--resume'])
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 5' in log
    assert last_meta(work, 'epoch_2.pth') == (2, 10)
    second = load_local_checkpoint(osp.join(work, 'epoch_2.pth'))['state_dict']
    assert not torch.equal(first['backbone.cls_token'], second['backbone.cls_token'])
    # An explicit checkpoint path works too, and a missing one is an error, not a fresh run.
    run_tool(['tools/train.py', cfg, '--work-dir', str(tmp_path / 'w2'), '--resume',
              osp.join(work, 'epoch_1.pth')])
    assert last_meta(str(tmp_path / 'w2'), 'epoch_2.pth') == (2, 10)
    proc = run_tool(['tools/train.py', cfg, '--work-dir', str(tmp_path / 'w3'), '--resume',
                     osp.join(work, 'nope.pth')], check=False)
    assert proc.returncode != 0 and 'does not exist' in proc.stderr


def test_train_resume_without_checkpoint_warns_and_missing_path_fails(tmp_path):
    from tools.train import main
    cfg = write_tiny_config(tmp_path / 'mae_tiny.py', config=MAE_DEMO, max_epochs=1)
    work = tmp_path / 'fresh'
    main([cfg, '--work-dir', str(work), '--resume'])
    log = open(glob.glob(str(work / '*' / '*.log'))[0]).read()
    assert f'WARNING - --resume: no checkpoint found in {work}' in log
    assert 'starting from scratch' in log
    assert osp.isfile(work / 'epoch_1.pth')
    with pytest.raises(FileNotFoundError, match='checkpoint .*missing.pth does not exist'):
        main([cfg, '--work-dir', str(work), '--resume', str(tmp_path / 'missing.pth')])


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU fallback')
def test_amp_config_runs_on_cpu_with_a_warning(tmp_path):
    cfg = write_tiny_config(tmp_path / 'mae_tiny.py', config=MAE_DEMO, max_epochs=1)
    proc = run_tool(['tools/train.py', cfg, '--work-dir', str(tmp_path / 'w'), '--amp'])
    assert 'AmpOptimWrapper -> OptimWrapper' in proc.stdout + proc.stderr
    assert osp.isfile(tmp_path / 'w' / 'epoch_1.pth')


def test_adapt_cfg_to_device_rewrites_gpu_only_settings():
    from mmengine.config import Config
    from famt_mm.compat import adapt_cfg_to_device
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale='dynamic',
                                         optimizer=dict(type='AdamW', lr=1e-3)),
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    changes = adapt_cfg_to_device(cfg, launcher='pytorch')
    if torch.cuda.is_available():
        assert changes == []
        return
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None


def test_test_tool_refuses_a_pretraining_config(tmp_path):
    cfg = write_tiny_config(tmp_path / 'mae_tiny.py', config=MAE_DEMO, max_epochs=1)
    ckpt = tmp_path / 'x.pth'
    torch.save({'state_dict': {}}, ckpt)
    proc = run_tool(['tools/test.py', cfg, str(ckpt)], check=False)
    assert proc.returncode != 0 and 'pre-training config cannot be tested' in proc.stderr


def test_famt_demo_config_trains_through_the_switch(tmp_path):
    from tests.conftest import FAMT_DEMO
    cfg = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO, max_epochs=3,
                            start_epoch=1, interval=1)
    work = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work])
    log = proc.stdout + proc.stderr
    assert 'FAMT refresh before epoch 2' in log and 'FAMT refresh before epoch 3' in log
    assert 'FAMT refresh before epoch 4' not in log
    ckpt = load_local_checkpoint(osp.join(work, 'epoch_3.pth'))
    assert ckpt['famt']['bank'].shape == (40, 4, 4) and ckpt['famt']['bank_epoch'] == 2


def test_small_machines_get_passive_openmp_waits_unless_the_user_chose():
    from tools.train import small_machine_env
    assert small_machine_env({}, 2) == {'OMP_WAIT_POLICY': 'PASSIVE'}
    assert small_machine_env({}, 1) == {'OMP_WAIT_POLICY': 'PASSIVE'}
    assert small_machine_env({}, 4) == {}  # larger machines keep OpenMP's default
    assert small_machine_env({'OMP_WAIT_POLICY': 'ACTIVE'}, 2) == {}


def test_small_machines_keep_a_core_for_the_model():
    from mmengine.config import Config

    from tools.train import fit_workers_to_cpus
    cfg = Config(dict(train_dataloader=dict(num_workers=2, persistent_workers=True),
                      val_dataloader=None))
    assert fit_workers_to_cpus(cfg, 8) is None and cfg.train_dataloader.num_workers == 2
    note = fit_workers_to_cpus(cfg, 2)
    assert cfg.train_dataloader.num_workers == 1 and 'num_workers 2 -> 1' in note
    fit_workers_to_cpus(cfg, 1)
    assert cfg.train_dataloader.num_workers == 0
    assert cfg.train_dataloader.persistent_workers is False
