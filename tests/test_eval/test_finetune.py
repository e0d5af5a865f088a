"""The ViT-S fine-tuning recipe (CIFAR-10 config), shrunk to the tiny ViT and the embedded
dataset, through tools/train.py and tools/test.py: strict loading without the final norm,
layer-wise lr decay, Mixup / CutMix, RandAugment / RandomErasing."""
import json
import os.path as osp

from mmengine.config import Config

from famt_mm.compat import load_local_checkpoint
from tests.conftest import REPO, run_tool
from tests.test_eval.conftest import TINY_ARCH

FINETUNE = osp.join(REPO, 'configs', 'eval', 'vit-small-p16_8xb128-coslr-100e_cifar10.py')


def write_tiny_finetune_config(path, checkpoint):
    cfg = Config.fromfile(FINETUNE)
    train_pipeline = [dict(t) for t in cfg.finetune_train_pipeline]
    train_pipeline[0]['scale'] = 32  # RandomResizedCrop
    test_pipeline = [dict(type='Resize', scale=32), dict(type='PackInputs')]
    cfg.model.backbone.arch = dict(TINY_ARCH)  # replaces 'deit-small'
    opts = {
        'model.backbone.img_size': 32,
        'model.backbone.patch_size': 8,
        'model.backbone.init_cfg.checkpoint': checkpoint,
        'model.head.in_channels': TINY_ARCH['embed_dims'],
        'train_cfg.max_epochs': 1,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=True)],
        'default_hooks.logger.interval': 1,
    }
    for loader, n, pipeline in (('train_dataloader', 40, train_pipeline),
                                ('val_dataloader', 16, test_pipeline),
                                ('test_dataloader', 16, test_pipeline)):
        opts.update({
            f'{loader}.batch_size': 8, f'{loader}.num_workers': 0,
            f'{loader}.persistent_workers': False,
            f'{loader}.dataset': dict(_delete_=True, type='SyntheticObjects', num_samples=n,
                                      img_size=32, split='test' if n == 16 else 'train',
                                      pipeline=pipeline)})
    cfg.merge_from_dict(opts)
    cfg.dump(str(path))
    return str(path)


def test_finetune_recipe_runs_through_the_tools(tmp_path, famt_checkpoint):
    checkpoint = famt_checkpoint
    cfg = write_tiny_finetune_config(tmp_path / 'finetune_tiny.py', checkpoint)
    work = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work])
    log = proc.stdout + proc.stderr
    # the pre-training's final norm is left out by name, everything else is loaded
    assert 'not loading [ln1.bias, ln1.weight]' in log
    trained = load_local_checkpoint(osp.join(work, 'epoch_1.pth'))
    state = trained['state_dict']
    assert not any(k.startswith('backbone.ln1.') for k in state)
    # one epoch of fine-tuning moves the pre-trained matrices by a few per cent; a model
    # that had not loaded them would be as far from them as from any random draw
    pre = load_local_checkpoint(checkpoint)['state_dict']
    matrices = [k for k, v in pre.items() if k.startswith('backbone.') and v.dim() >= 2]
    assert len(matrices) >= 10
    for key in matrices:
        assert (state[key] - pre[key]).norm() < 0.2 * pre[key].norm(), key
    # layer-wise lr decay: the deepest groups get the base lr, the embeddings 0.65^3 of it
    lrs = {g['lr'] for g in trained['optimizer']['param_groups']}
    assert max(lrs) / min(lrs) == 1 / 0.65 ** (TINY_ARCH['num_layers'] + 1)

    out = str(tmp_path / 'metrics.json')
    run_tool(['tools/test.py', cfg, osp.join(work, 'epoch_1.pth'), '--work-dir',
              str(tmp_path / 'test'), '--out', out])
    with open(out) as f:
        assert 0.0 <= json.load(f)['accuracy/top1'] <= 100.0
