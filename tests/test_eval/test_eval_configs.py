"""Every evaluation config loads, builds its model, and holds the recipe's numbers."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO

EVAL_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'eval', '*.py')))


def build_model(cfg):
    import famt_mm  # noqa: F401  (registers StrictPretrained and the FAMT modules)
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model)


def test_there_are_linear_probe_and_finetune_configs_for_every_dataset():
    names = [osp.basename(p) for p in EVAL_CONFIGS]
    for data in ('in1k', 'cifar10', 'cifar100', 'tiny-imagenet'):
        assert any('linear' in n and n.endswith(f'_{data}.py') for n in names), data
        assert any('linear' not in n and n.endswith(f'_{data}.py') for n in names), data
    assert any(n.endswith('_synthetic-objects.py') for n in names)


@pytest.mark.parametrize('path', EVAL_CONFIGS, ids=osp.basename)
def test_config_builds_and_follows_its_recipe(path):
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    # tools/test.py needs these; tools/train.py needs a val loop to report accuracy
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator', 'test_dataloader',
                'test_evaluator'):
        assert cfg.get(key), f'{name}: no {key}'
    init = cfg.model.backbone.init_cfg
    assert init.type == 'StrictPretrained' and init.prefix == 'backbone.'
    assert init.checkpoint == cfg.pretrained and init.checkpoint.endswith('.pth')

    # the lr belongs to the batch in the name, and --auto-scale-lr keeps that rule
    gpus, per_gpu = (int(v) for v in re.search(r'(\d+)xb(\d+)', name).groups())
    batch = gpus * per_gpu
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.base_batch_size == batch
    optimizer = cfg.optim_wrapper.optimizer
    linear = 'linear' in name
    if linear:  # LARS as MAE; the CPU demo's 160 steps need plain SGD (see its config)
        assert optimizer.type == ('SGD' if 'synthetic' in name else 'LARS')
        assert optimizer.weight_decay == 0
        assert optimizer.lr == pytest.approx(0.1 * batch / 256)
    else:
        assert optimizer.type == 'AdamW'
        assert optimizer.lr == pytest.approx(5e-4 * batch / 256)
        assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.65

    model = build_model(cfg)
    backbone = dict(model.backbone.named_parameters())
    assert backbone and all(not p.requires_grad for p in backbone.values()) == linear
    if linear:  # frozen encoder, BatchNorm without affine, trainable linear head
        assert model.backbone.out_type == 'cls_token'
        assert type(model.neck).__name__ == 'ClsBatchNormNeck'
        assert not list(model.neck.parameters())
        assert all(p.requires_grad for p in model.head.parameters())
    else:  # MAE's fine-tuning: no final norm, a new norm after the pooling
        assert all(p.requires_grad for p in backbone.values())
        assert model.backbone.out_type == 'avg_featmap' and not model.backbone.final_norm
        assert tuple(init.ignored_keys) == ('ln1.',) and tuple(init.allowed_missing) == ('ln2.',)
    num_classes = {'in1k': 1000, 'cifar10': 10, 'cifar100': 100, 'tiny-imagenet': 200,
                   'synthetic-objects': 8}[name.rsplit('_', 1)[1][:-3]]
    assert model.head.num_classes == num_classes
    assert cfg.data_preprocessor.num_classes == num_classes
    if 'vit-small' in name:  # ViT-S/16 is mmpretrain's deit-small, not arch 's'
        assert model.backbone.embed_dims == 384 and model.backbone.num_layers == 12


def test_vit_s_eval_configs_load_a_real_pretraining_checkpoint(tmp_path):
    """The keys of a FAMT ViT-S pre-training model fit both ViT-S eval backbones."""
    from famt_mm.transfer import load_strict_pretrained_modules
    from mmengine.runner import set_random_seed
    set_random_seed(0)
    pre = build_model(Config.fromfile(osp.join(REPO, 'configs', 'famt_mae_vit-s_cifar10.py')))
    ckpt = str(tmp_path / 'famt_vit-s.pth')
    torch.save({'state_dict': pre.state_dict(), 'meta': {}}, ckpt)
    expected = pre.backbone.layers[11].attn.qkv.weight
    for name in ('vit-small-p16_8xb128-linear-coslr-90e_cifar10.py',
                 'vit-small-p16_8xb128-coslr-100e_cifar10.py'):
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'eval', name))
        cfg.model.backbone.init_cfg.checkpoint = ckpt
        model = build_model(cfg)
        assert not torch.equal(model.backbone.layers[11].attn.qkv.weight, expected)
        load_strict_pretrained_modules(model)  # what StrictPretrainedHook does
        model.init_weights()
        assert torch.equal(model.backbone.layers[11].attn.qkv.weight, expected), name
        assert torch.equal(model.backbone.cls_token, pre.backbone.cls_token), name
        # same keys, but for the fine-tuning's own norm after the pooling (ln2) and the
        # final norm it does without (ln1)
        pre_keys = {k[len('backbone.'):] for k in pre.state_dict() if k.startswith('backbone.')}
        final_norm, pooled_norm = {'ln1.weight', 'ln1.bias'}, {'ln2.weight', 'ln2.bias'}
        model_keys = set(model.backbone.state_dict())
        if 'linear' in name:
            assert model_keys == pre_keys
        else:
            assert model_keys - pooled_norm == pre_keys - final_norm
