"""famt_mm.compat: CPU fallback only where there is no GPU; the checkpoint fix only for the
mmengine releases that need it; transfer configs need mmcv's ops.

The machine probes read a directory tree given as ``root``: the tests build fake
/dev and /proc trees; torch itself is the real one (a CUDA build without a usable GPU here).
"""
import pytest
import torch
from mmengine.config import Config

from famt_mm.compat import (GPUUnusableError, adapt_cfg_to_device, cuda_unusable_cause,
                            needs_full_checkpoint_loading, nvidia_driver_version,
                            require_mmcv_ops)

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine where '
                                'torch cannot use CUDA')


def gpu_config():
    return Config(dict(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale='dynamic',
                                          optimizer=dict(type='AdamW', lr=1e-3)),
                       env_cfg=dict(dist_cfg=dict(backend='nccl'))))


def fake_machine(tmp_path, driver=None):
    """A /dev and /proc tree with one NVIDIA GPU (and a driver version file)."""
    (tmp_path / 'dev').mkdir()
    (tmp_path / 'dev' / 'nvidia0').write_text('')
    proc = tmp_path / 'proc' / 'driver' / 'nvidia'
    (proc / 'gpus' / '0000:3b:00.0').mkdir(parents=True)
    if driver:
        (proc / 'version').write_text(
            f'NVRM version: NVIDIA UNIX x86_64 Kernel Module  {driver}  Tue Jul  6 2021\n'
            'GCC version:  gcc version 9.3.0\n')
    return str(tmp_path)


def test_a_machine_without_gpu_runs_gpu_configs_on_the_cpu(tmp_path, monkeypatch):
    monkeypatch.delenv('FAMT_ALLOW_CPU', raising=False)
    assert cuda_unusable_cause(str(tmp_path)) is None
    cfg = gpu_config()
    with pytest.warns(UserWarning, match='No CUDA device'):
        changes = adapt_cfg_to_device(cfg, root=str(tmp_path))
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    assert cfg.env_cfg.dist_cfg.backend == 'gloo' and len(changes) == 2


@pytest.mark.skipif(torch.version.cuda is None, reason='needs a CUDA build of torch')
def test_an_old_driver_stops_the_run_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv('FAMT_ALLOW_CPU', raising=False)
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)
    root = fake_machine(tmp_path, driver='450.36.06')
    assert nvidia_driver_version(root) == (450, 36)
    cfg = gpu_config()
    with pytest.raises(GPUUnusableError, match=r'NVIDIA driver 450\.36 is older than .*'
                       r'FAMT_ALLOW_CPU=1'):
        adapt_cfg_to_device(cfg, root=root)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'  # nothing rewritten


@pytest.mark.skipif(torch.version.cuda is None, reason='needs a CUDA build of torch')
def test_hidden_devices_and_other_causes_are_named(tmp_path):
    root = fake_machine(tmp_path, driver='999.99')
    assert 'hides every GPU' in cuda_unusable_cause(root, {'CUDA_VISIBLE_DEVICES': ''})
    assert 'hides every GPU' in cuda_unusable_cause(root, {'CUDA_VISIBLE_DEVICES': '-1'})
    # a recent driver, nothing hidden: torch's own reason
    assert cuda_unusable_cause(root, {}).startswith('torch.cuda.is_available() is False')


@pytest.mark.skipif(torch.version.cuda is None, reason='needs a CUDA build of torch')
def test_the_cpu_run_goes_ahead_when_asked_for(tmp_path, monkeypatch):
    root = fake_machine(tmp_path, driver='450.36.06')
    monkeypatch.setenv('FAMT_ALLOW_CPU', '1')
    cfg = gpu_config()
    with pytest.warns(UserWarning, match=r'GPU unusable \(the NVIDIA driver 450\.36'):
        adapt_cfg_to_device(cfg, root=root)
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    monkeypatch.delenv('FAMT_ALLOW_CPU')
    cfg = gpu_config()
    with pytest.warns(UserWarning, match='GPU unusable'):
        adapt_cfg_to_device(cfg, root=root, allow_cpu=True)  # tools/train.py --allow-cpu


def test_checkpoint_fix_applies_to_the_unfixed_mmengine_releases_only():
    assert needs_full_checkpoint_loading('2.6.0', '0.10.7')
    assert needs_full_checkpoint_loading('2.14.1+cu130', '0.10.4')
    assert not needs_full_checkpoint_loading('2.5.1', '0.10.7')
    assert not needs_full_checkpoint_loading('2.6.0', '0.10.8')
    assert not needs_full_checkpoint_loading('2.6.0', '0.11.0')


def test_transfer_configs_pass_the_ops_check_where_mmcv_has_ops():
    import importlib.util
    if importlib.util.find_spec('mmcv._ext') is None:
        with pytest.raises(RuntimeError, match='install.sh --with-ops'):
            require_mmcv_ops(Config(dict(default_scope='mmdet')))
    else:
        require_mmcv_ops(Config(dict(default_scope='mmdet')))
        require_mmcv_ops(Config(dict(default_scope='mmseg')))
    require_mmcv_ops(Config(dict(default_scope='mmpretrain')))  # pre-training: never needed
