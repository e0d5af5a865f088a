"""A real (tiny) FAMT pre-training checkpoint and the demo linear-probe config
shrunk to its 32-d 2-block ViT on 32 px images."""
import os.path as osp

import pytest

from tests.conftest import REPO, tiny_cfg

LINEAR_DEMO = osp.join(REPO, 'configs', 'eval',
                       'vit-tiny-p8_1xb256-linear-coslr-20e_synthetic-objects.py')
TINY_ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def shrink_linear_probe(checkpoint, max_epochs=1):
    """--cfg-options (as a dict) that fit the demo linear probe to the tiny ViT."""
    opts = {
        'model.backbone.arch': dict(TINY_ARCH),
        'model.backbone.img_size': 32,
        'model.backbone.frozen_stages': TINY_ARCH['num_layers'],
        'model.backbone.init_cfg.checkpoint': checkpoint,
        'model.neck.input_features': TINY_ARCH['embed_dims'],
        'model.head.in_channels': TINY_ARCH['embed_dims'],
        'train_dataloader.dataset.pipeline.0.scale': 32,
        'train_cfg.max_epochs': max_epochs,
        'train_cfg.val_interval': 1,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=True)],
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.logger.interval': 1,
    }
    for loader, n in (('train_dataloader', 40), ('val_dataloader', 16), ('test_dataloader', 16)):
        opts.update({f'{loader}.batch_size': 8, f'{loader}.num_workers': 0,
                     f'{loader}.persistent_workers': False,
                     f'{loader}.dataset.num_samples': n, f'{loader}.dataset.img_size': 32})
    return opts


def write_linear_probe_config(path, checkpoint, **kwargs):
    from mmengine.config import Config
    cfg = Config.fromfile(LINEAR_DEMO)
    cfg.merge_from_dict(shrink_linear_probe(checkpoint, **kwargs))
    cfg.dump(str(path))
    return str(path)


@pytest.fixture(scope='session')
def famt_checkpoint(tmp_path_factory):
    """2 epochs of FAMT pre-training of the tiny ViT (random masking, refresh, FAMT)."""
    from mmengine.runner import Runner
    work = tmp_path_factory.mktemp('famt_pretrain')
    cfg = tiny_cfg(work, max_epochs=2, start_epoch=1, interval=1)
    cfg.experiment_name = 'eval_famt_pretrain'
    Runner.from_cfg(cfg).train()
    path = osp.join(str(work), 'epoch_2.pth')
    assert osp.isfile(path)
    return path
