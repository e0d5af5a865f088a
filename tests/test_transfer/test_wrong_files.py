"""The transfer tools name a wrong file: the converter refuses a destination that is its source
(a symlink or hard link too), the visualisation tool and the strict loader name a checkpoint of
another architecture."""
import os
import shutil

import pytest
import torch
from mmpretrain.registry import MODELS

import famt_mm  # noqa: F401
from tests.conftest import FAMT_DEMO, TINY_OPTIONS


@pytest.fixture(scope='module')
def tiny_pretrain(tmp_path_factory):
    """A (freshly initialised) tiny FAMTMAE saved as mmengine saves a pre-training."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(FAMT_DEMO)
    cfg.merge_from_dict({k: v for k, v in TINY_OPTIONS.items() if k.startswith('model.')})
    # the mmseg / mmdet transfer tests before this module leave their runner's scope current
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    path = str(tmp_path_factory.mktemp('tiny_pretrain') / 'epoch_1.pth')
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), path)
    return path


def test_converter_refuses_a_destination_that_is_the_source(tiny_pretrain, tmp_path):
    from tools.model_converters.famt2target import main
    src = str(tmp_path / 'src.pth')
    shutil.copy(tiny_pretrain, src)
    before = open(src, 'rb').read()
    os.symlink(src, tmp_path / 'link.pth')
    os.link(src, tmp_path / 'hard.pth')
    with pytest.raises(SystemExit, match=r'refusing to write .*link.pth: it is the source '
                                         r'checkpoint .*src.pth \(both resolve to'):
        main([src, str(tmp_path / 'link.pth'), '--target', 'mmpretrain'])
    with pytest.raises(SystemExit, match=r'hard.pth: it is the source checkpoint .*\(a hard '
                                         r'link: same file, inode'):
        main([src, str(tmp_path / 'hard.pth'), '--target', 'mmdet'])
    assert open(src, 'rb').read() == before
    main([src, str(tmp_path / 'out.pth'), '--target', 'mmseg'])  # a real destination works


def test_wrong_architecture_is_named_by_the_vis_tool_and_strict_loader(tiny_pretrain):
    from mmpretrain.models.backbones import VisionTransformer

    from famt_mm.transfer.checkpoint import load_strict_pretrained
    from tools.visualization.vis_famt_masks import main
    with pytest.raises(SystemExit) as err:
        main([FAMT_DEMO, tiny_pretrain, '--device', 'cpu'])
    assert str(err.value) == (
        f'error: {tiny_pretrain} does not fit the config: ViT checkpoint (32-d, 2 blocks, '
        'patch 8), ViT-T model (192-d, 6 blocks, patch 8); pass the config the checkpoint '
        'was trained with')
    vit = VisionTransformer(arch='deit-tiny', img_size=32, patch_size=16)
    with pytest.raises(ValueError) as err:
        load_strict_pretrained(vit, tiny_pretrain, prefix='backbone.')
    assert ('  wrong architecture: ViT checkpoint (32-d, 2 blocks, patch 8), ViT-T model '
            '(192-d, 12 blocks, patch 16)') in str(err.value).splitlines()
