"""The FAMT training pipeline of every config comes from one place (famt_mm.recipe.famt_pipeline /
famt_train_dataloader) and passes the weight hook's start-up check at the model's input size."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import TRANSFORMS

import famt_mm  # noqa: F401
from famt_mm.datasets.pipeline_checks import _check_transforms
from tests.conftest import REPO

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))
FAMT_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'famt_*.py')))


def test_no_config_writes_out_the_famt_pipeline():
    # what famt_pipeline adds: the recording crops (both start so) and the meta key FAMT reads
    written = {osp.relpath(path, REPO): [w for w in ('FAMTRandomResizedCrop', "'famt_crop'")
                                         if w in open(path).read()]
               for path in CONFIGS}
    assert not {path: words for path, words in written.items() if words}
    assert len(FAMT_CONFIGS) >= 12


@pytest.mark.parametrize('path', FAMT_CONFIGS, ids=lambda p: osp.basename(p))
def test_famt_config_pipeline_passes_the_start_up_check(path):
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    size, patch = backbone.get('img_size', 224), backbone.get('patch_size', 16)
    transforms = [TRANSFORMS.build(step) for step in cfg.train_dataloader.dataset.pipeline]
    assert _check_transforms(transforms, (size, size), (size // patch, size // patch),
                             'fail') is None
