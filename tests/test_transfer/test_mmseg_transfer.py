"""ADE20K transfer: FAMT checkpoint -> famt2target.py --target mmseg -> UperNet (mmseg's MAE
backbone) through tools/train.py and tools/test.py, and wrong files refused."""
import math
import re
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from famt_mm.compat import load_local_checkpoint
from tests.test_transfer.conftest import MMSEG_CONFIG, write_mmseg_tiny_config
from tools.model_converters.famt2target import main as convert
from tools.test import main as run_test_tool
from tools.train import main as run_train_tool


def test_upernet_trains_and_tests_from_famt_backbone(famt_checkpoint, ade_root, tmp_path):
    converted = str(tmp_path / 'famt_mmseg.pth')
    convert([famt_checkpoint, converted, '--target', 'mmseg'])
    cfg = write_mmseg_tiny_config(tmp_path / 'upernet_tiny.py', converted, ade_root)
    work = str(tmp_path / 'work')

    run_train_tool([cfg, '--work-dir', work, '--no-validate'])
    trained = load_local_checkpoint(osp.join(work, 'iter_2.pth'))['state_dict']
    pretrained = torch.load(converted, weights_only=True)['state_dict']
    for key in ('patch_embed.projection.weight', 'layers.1.attn.qkv.weight', 'cls_token'):
        assert torch.allclose(trained['backbone.' + key], pretrained[key], atol=1e-5), key
    # 4 x 4 pre-training grid resized to the 6 x 6 grid of 48 px crops, CLS slot kept
    pos = trained['backbone.pos_embed']
    assert pos.shape == (1, 37, 32)
    assert torch.allclose(pos[:, 0], pretrained['pos_embed'][:, 0], atol=1e-5)

    metrics = run_test_tool([cfg, osp.join(work, 'iter_2.pth'), '--work-dir', str(tmp_path / 't')])
    for name in ('mIoU', 'aAcc', 'mAcc'):
        assert name in metrics and math.isfinite(metrics[name]), (name, metrics)
        assert 0.0 <= metrics[name] <= 100.0


def test_wrong_files_fail_loudly_in_train(famt_checkpoint, ade_root, tmp_path):
    """Each wrong file stops tools/train.py before any step, naming the problem."""
    det = str(tmp_path / 'famt_mmdet.pth')
    convert([famt_checkpoint, det, '--target', 'mmdet'])
    torch.save({'state_dict': {'weight': torch.randn(3, 3)}}, tmp_path / 'random.pth')
    (tmp_path / 'notes.txt').write_text('a text file\n')
    cases = [
        (det, [r'missing keys \(1\): \[cls_token\]', 'converted for mmdet',
               r'pos_embed: checkpoint \(1, 16, 32\) vs model \(1, 37, 32\)']),
        (str(tmp_path / 'random.pth'), [r'unexpected keys \(1\): \[weight\]',
                                        r'missing keys \(52\): \[cls_token, ']),
        (str(tmp_path / 'notes.txt'), ['notes.txt is not a PyTorch checkpoint']),
        (famt_checkpoint, ['looks like a full pre-training checkpoint']),
    ]
    for i, (path, patterns) in enumerate(cases):
        cfg = write_mmseg_tiny_config(tmp_path / f'wrong{i}.py', path, ade_root)
        with pytest.raises(ValueError) as err:
            run_train_tool([cfg, '--work-dir', str(tmp_path / f'w{i}'), '--no-validate'])
        assert path in str(err.value)
        for pattern in patterns:
            assert re.search(pattern, str(err.value)), (pattern, err.value)
        assert not osp.exists(tmp_path / f'w{i}' / 'iter_1.pth')


def test_layer_wise_lr_decay_groups_of_the_ade20k_config():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(MMSEG_CONFIG)
    cfg.model.backbone.update(img_size=(32, 32), patch_size=8, embed_dims=32, num_layers=12,
                              num_heads=2, mlp_ratio=2)
    cfg.model.neck.embed_dim = 32
    cfg.model.decode_head.update(in_channels=[32] * 4, channels=16)
    cfg.model.auxiliary_head.update(in_channels=32, channels=16)
    cfg.optim_wrapper.type = 'OptimWrapper'  # AMP needs a GPU; the groups are the same
    cfg.optim_wrapper.pop('loss_scale')
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    lr, decay = 1e-4, 0.65
    by_param = {id(p): g for g in optim.optimizer.param_groups for p in g['params']}
    named = dict(model.named_parameters())

    def group(name):
        return by_param[id(named[name])]

    assert group('backbone.patch_embed.projection.weight')['lr'] == pytest.approx(lr * decay ** 13)
    assert group('backbone.layers.0.attn.qkv.weight')['lr'] == pytest.approx(lr * decay ** 12)
    assert group('backbone.layers.11.attn.qkv.weight')['lr'] == pytest.approx(lr * decay)
    assert group('decode_head.conv_seg.weight')['lr'] == pytest.approx(lr)
    assert group('backbone.layers.11.attn.qkv.weight')['weight_decay'] == 0.05
    for no_decay in ('backbone.pos_embed', 'backbone.cls_token', 'backbone.layers.0.gamma_1',
                     'backbone.layers.0.attn.relative_position_bias_table',
                     'decode_head.conv_seg.bias'):
        assert group(no_decay)['weight_decay'] == 0.0, no_decay
