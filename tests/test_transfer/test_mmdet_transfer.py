"""COCO transfer: FAMT checkpoint -> famt2target.py --target mmdet -> ViTDet Mask R-CNN through
tools/train.py and tools/test.py (real mmdet, tiny sizes)."""
import math
import os.path as osp

import torch

from famt_mm.compat import load_local_checkpoint
from tests.conftest import run_tool
from tests.test_transfer.conftest import write_mmdet_tiny_config
from tools.test import main as run_test_tool
from tools.train import main as run_train_tool


def test_mask_rcnn_trains_and_tests_from_famt_backbone(famt_checkpoint, coco_root, tmp_path):
    converted = str(tmp_path / 'famt_mmdet.pth')
    run_tool(['tools/model_converters/famt2target.py', famt_checkpoint, converted,
              '--target', 'mmdet'])
    cfg = write_mmdet_tiny_config(tmp_path / 'mask_rcnn_tiny.py', converted, coco_root)
    work = str(tmp_path / 'work')

    run_train_tool([cfg, '--work-dir', work, '--no-validate'])
    trained = load_local_checkpoint(osp.join(work, 'iter_2.pth'))['state_dict']
    pretrained = torch.load(converted, weights_only=True)['state_dict']
    # The backbone started from the FAMT weights (2 steps at lr <= 5e-7 move them by
    # less than 1e-5); pos_embed was resized from 4 x 4 to the 8 x 8 grid of 64 px inputs.
    for key in ('patch_embed.projection.weight', 'layers.0.attn.qkv.weight',
                'layers.3.ffn.layers.1.weight'):
        assert torch.allclose(trained['backbone.' + key], pretrained[key], atol=1e-5), key
    assert trained['backbone.pos_embed'].shape == (1, 64, 32)
    assert 'backbone.cls_token' not in trained

    metrics = run_test_tool([cfg, osp.join(work, 'iter_2.pth'), '--work-dir', str(tmp_path / 't')])
    for name in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert name in metrics and math.isfinite(metrics[name]), (name, metrics)
        assert 0.0 <= metrics[name] <= 1.0
