"""Shared helpers: the demo configs shrunk to a few seconds of CPU work."""
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FAMT_DEMO = osp.join(REPO, 'configs', 'famt_mae_vit-t_demo.py')
MAE_DEMO = osp.join(REPO, 'configs', 'mae_vit-t_demo.py')

# A 2-block 32-d ViT on 32 x 32 images with 8 px patches (L = 16 patches).
TINY_OPTIONS = {
    'model.backbone.arch': dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
    'model.backbone.img_size': 32,
    'model.neck.num_patches': 16,
    'model.neck.embed_dim': 32,
    'model.neck.decoder_embed_dim': 16,
    'model.neck.decoder_depth': 1,
    'model.neck.decoder_num_heads': 2,
    'train_dataloader.batch_size': 8,
    'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'train_dataloader.dataset.num_samples': 40,
    'train_dataloader.dataset.img_size': 32,
    'train_dataloader.dataset.pipeline.0.scale': 32,
    'default_hooks.logger.interval': 1,
    'default_hooks.checkpoint.max_keep_ckpts': -1,
}


def tiny_options(max_epochs=3, famt=True, start_epoch=1, interval=1, **extra):
    """--cfg-options (as a dict) that shrink a demo config."""
    opts = dict(TINY_OPTIONS)
    opts['train_cfg.max_epochs'] = max_epochs
    opts['param_scheduler'] = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
    if famt:
        opts['custom_hooks'] = [dict(type='FAMTWeightHook', start_epoch=start_epoch,
                                     interval=interval, batch_size=8, num_workers=0)]
    opts.update(extra)
    return opts


def tiny_cfg(work_dir, config=FAMT_DEMO, **kwargs):
    """The demo config, shrunk, as an mmengine Config."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(tiny_options(famt=config == FAMT_DEMO, **kwargs))
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    return cfg


def write_tiny_config(path, config=FAMT_DEMO, **kwargs):
    """Dump a shrunk demo config to ``path`` (a .py file for the command-line tools)."""
    cfg = tiny_cfg(osp.dirname(str(path)), config=config, **kwargs)
    cfg.pop('work_dir')
    cfg.pop('launcher')
    cfg.dump(str(path))
    return str(path)


def run_tool(args, timeout=600, env=None, check=True):
    """Run a repo tool as a user would, from the repo root."""
    full_env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    full_env.update(env or {})
    proc = subprocess.run([sys.executable] + list(args), cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n'
                             f'{proc.stderr[-6000:]}')
    return proc


@pytest.fixture
def famt_runner_cfg(tmp_path):
    return lambda **kw: tiny_cfg(tmp_path / 'work', **kw)
