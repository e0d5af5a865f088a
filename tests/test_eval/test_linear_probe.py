"""The demo linear probe, shrunk, on a real FAMT checkpoint, through tools/train.py and
tools/test.py: the encoder holds the pre-trained weights, stays frozen, and a wrong
checkpoint stops the run."""
import json
import os.path as osp

import pytest
import torch

from famt_mm.compat import load_local_checkpoint
from tests.conftest import run_tool
from tests.test_eval.conftest import write_linear_probe_config


def test_linear_probe_trains_on_the_pretrained_frozen_encoder_and_tests(tmp_path,
                                                                         famt_checkpoint):
    cfg = write_linear_probe_config(tmp_path / 'linear_tiny.py', famt_checkpoint)
    work = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work])
    log = proc.stdout + proc.stderr
    assert 'StrictPretrained: load VisionTransformer' in log
    assert 'accuracy/top1' in log  # validation after the epoch

    trained = load_local_checkpoint(osp.join(work, 'epoch_1.pth'))
    state = trained['state_dict']
    pre = load_local_checkpoint(famt_checkpoint)['state_dict']
    pre_backbone = {k: v for k, v in pre.items() if k.startswith('backbone.')}
    backbone = {k: v for k, v in state.items() if k.startswith('backbone.')}
    assert set(backbone) == set(pre_backbone)
    # every encoder tensor is the pre-trained one, after a training epoch: loaded and frozen
    for key, value in pre_backbone.items():
        assert torch.equal(backbone[key], value), key
    # ... while the head did train: the optimizer holds state for exactly its two tensors
    assert len(trained['optimizer']['state']) == 2
    assert state['head.layers.head.bias'].abs().sum() > 0  # initialised at 0

    out = str(tmp_path / 'metrics.json')
    proc = run_tool(['tools/test.py', cfg, osp.join(work, 'epoch_1.pth'), '--work-dir',
                     str(tmp_path / 'test'), '--out', out])
    with open(out) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
    assert 'accuracy/top1' in proc.stdout + proc.stderr


def _train(cfg, work, *options):
    from tools.train import main
    main([cfg, '--work-dir', work, '--cfg-options', f'experiment_name={osp.basename(work)}',
          *options])


def test_a_wrong_checkpoint_stops_the_run(tmp_path, famt_checkpoint):
    cfg = write_linear_probe_config(tmp_path / 'linear_tiny.py', famt_checkpoint)
    # another architecture (64-d instead of the checkpoint's 32-d)
    with pytest.raises(ValueError, match='shape mismatch'):
        _train(cfg, str(tmp_path / 'w_arch'), 'model.backbone.arch.embed_dims=64',
               'model.neck.input_features=64', 'model.head.in_channels=64')
    # a file without the pre-training's `backbone.` weights
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'encoder.weight': torch.zeros(2)}}, other)
    with pytest.raises(ValueError, match='prefix'):
        _train(cfg, str(tmp_path / 'w_prefix'), f'model.backbone.init_cfg.checkpoint={other}')
    # the config's placeholder left as it is (no such file)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        _train(cfg, str(tmp_path / 'w_missing'),
               'model.backbone.init_cfg.checkpoint=work_dirs/nope/epoch_400.pth')
    assert not osp.exists(tmp_path / 'w_arch' / 'epoch_1.pth')
