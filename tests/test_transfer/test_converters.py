"""tools/model_converters: FAMT checkpoint -> exactly the keys of each target backbone."""
import os.path as osp
import re

import pytest
import torch

from tests.conftest import run_tool
from tests.test_transfer.conftest import TINY_ARCH
from tools.model_converters.famt2target import main as convert

NEW_IN_TARGET = {  # parameters the pre-training never had: the configs' allowed_missing
    'mmpretrain': (),
    'mmdet': ('rel_pos_h', 'rel_pos_w'),
    'mmseg': ('gamma_1', 'gamma_2', 'relative_position_bias_table', 'relative_position_index'),
}


def _target_backbone(target):
    """The tiny backbone each target's config builds, from scratch."""
    if target == 'mmpretrain':
        from mmpretrain.models.backbones import VisionTransformer
        return VisionTransformer(arch=TINY_ARCH, img_size=32, patch_size=8)
    if target == 'mmdet':
        from famt_mm.transfer.vitdet import ViTDetBackbone
        return ViTDetBackbone(arch=TINY_ARCH, img_size=32, patch_size=8, window_size=2,
                              window_block_indexes=[0, 1, 2])
    from mmseg.models.backbones import MAE
    return MAE(img_size=32, patch_size=8, embed_dims=32, num_layers=4, num_heads=2, mlp_ratio=2,
               out_indices=[0, 1, 2, 3], init_values=1.0)


def _pretrained_encoder(path):
    from famt_mm.compat import load_local_checkpoint
    state = load_local_checkpoint(path)['state_dict']
    return {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}


@pytest.mark.parametrize('target', ['mmpretrain', 'mmdet', 'mmseg'])
def test_converted_keys_are_exactly_the_target_backbone_keys(famt_checkpoint, tmp_path, target):
    dst = str(tmp_path / f'{target}.pth')
    convert([famt_checkpoint, dst, '--target', target])
    state = torch.load(dst, weights_only=True)['state_dict']  # tensor-only file
    backbone = _target_backbone(target)
    expected = {k for k in backbone.state_dict()
                if not k.endswith(NEW_IN_TARGET[target])}
    assert set(state) == expected
    for key, value in state.items():
        assert value.shape == backbone.state_dict()[key].shape, key
    encoder = _pretrained_encoder(famt_checkpoint)
    key = 'layers.3.ffn.layers.1.weight'
    assert torch.equal(state[key], encoder[key])
    if target == 'mmdet':  # CLS slot dropped, grid kept
        assert torch.equal(state['pos_embed'], encoder['pos_embed'][:, 1:])
    else:
        assert torch.equal(state['pos_embed'], encoder['pos_embed'])


@pytest.mark.parametrize('target', ['mmpretrain', 'mmdet', 'mmseg'])
def test_famt_simmim_checkpoint_converts_without_its_mask_token(tmp_path, target):
    """SimMIM declares its encoder's mask_token pre-training only (pretrain_only_keys)."""
    from mmengine.runner import save_checkpoint
    from mmpretrain.registry import MODELS

    from famt_mm.models.famt_algorithm import pretrain_only_keys
    assert 'mask_token' in pretrain_only_keys()
    model = MODELS.build(dict(
        type='FAMTSimMIM', mask_patch_size=16,
        backbone=dict(type='FAMTSimMIMViT', arch=TINY_ARCH, img_size=32, patch_size=8),
        neck=dict(type='FAMTSimMIMLinearDecoder', in_channels=32, encoder_stride=8),
        head=dict(type='FAMTSimMIMHead', patch_size=8,
                  loss=dict(type='PixelReconstructionLoss', criterion='L1', channel=3))))
    model.init_weights()
    src = str(tmp_path / 'famt_simmim.pth')
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, src)
    assert 'mask_token' in _pretrained_encoder(src)  # what main refused before
    dst = str(tmp_path / f'{target}.pth')
    convert([src, dst, '--target', target])
    state = torch.load(dst, weights_only=True)['state_dict']
    backbone = _target_backbone(target)
    expected = {k for k in backbone.state_dict() if not k.endswith(NEW_IN_TARGET[target])}
    assert 'mask_token' not in state and set(state) == expected
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith(NEW_IN_TARGET[target]) for k in missing)
    key = 'layers.3.attn.qkv.weight'
    assert torch.equal(backbone.state_dict()[key], model.backbone.state_dict()[key])


def test_img_size_resizes_pos_embed_now(famt_checkpoint, tmp_path):
    dst = str(tmp_path / 'seg64.pth')
    convert([famt_checkpoint, dst, '--target', 'mmseg', '--img-size', '64'])
    pos = torch.load(dst, weights_only=True)['state_dict']['pos_embed']
    assert pos.shape == (1, 1 + 8 * 8, 32)
    assert torch.equal(pos[:, 0], _pretrained_encoder(famt_checkpoint)['pos_embed'][:, 0])


def test_official_mae_release_keys_are_accepted(famt_checkpoint, tmp_path):
    """facebookresearch/mae names (blocks.N.norm1, mlp.fc1, norm) map onto ours."""
    encoder = _pretrained_encoder(famt_checkpoint)
    renames = [(r'^patch_embed\.projection\.', 'patch_embed.proj.'),
               (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
               (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
               (r'^layers\.(\d+)\.attn\.', r'blocks.\1.attn.'),
               (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
               (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
               (r'^ln1\.', 'norm.')]
    timm = {}
    for key, value in encoder.items():
        for pattern, repl in renames:
            key = re.sub(pattern, repl, key)
        timm[key] = value
    timm['decoder_embed.weight'] = torch.zeros(16, 32)  # the MAE decoder is dropped
    torch.save({'model': timm}, tmp_path / 'mae_official.pth')
    convert([str(tmp_path / 'mae_official.pth'), str(tmp_path / 'out.pth'), '--target',
             'mmpretrain'])
    state = torch.load(tmp_path / 'out.pth', weights_only=True)['state_dict']
    assert set(state) == set(encoder)
    assert all(torch.equal(state[k], encoder[k]) for k in encoder)


def test_converter_cli_refuses_an_already_converted_file(famt_checkpoint, tmp_path):
    det = str(tmp_path / 'det.pth')
    convert([famt_checkpoint, det, '--target', 'mmdet'])
    proc = run_tool(['tools/model_converters/famt2target.py', det, str(tmp_path / 'x.pth'),
                     '--target', 'mmseg'],
                    check=False)
    assert proc.returncode != 0
    assert 'already converted for mmdet' in proc.stderr
    assert 'Traceback' not in proc.stderr and not osp.exists(tmp_path / 'x.pth')


def test_converter_refuses_wrong_inputs(famt_checkpoint, tmp_path):
    text = tmp_path / 'readme.pth'
    text.write_text('not weights')
    with pytest.raises(SystemExit, match='readme.pth is not a PyTorch checkpoint'):
        convert([str(text), str(tmp_path / 'o.pth'), '--target', 'mmdet'])
    # a random state dict without a ViT encoder
    torch.save({'state_dict': {'conv1.weight': torch.randn(8, 3, 3, 3)}}, tmp_path / 'rnd.pth')
    with pytest.raises(SystemExit, match=r'has no backbone weights.*conv1\.weight'):
        convert([str(tmp_path / 'rnd.pth'), str(tmp_path / 'o.pth'), '--target', 'mmseg'])
    # a plain ViT with a stray relative position table is neither plain nor BEiT-style (layer
    # scales and q / v biases fold into plain blocks, test_famt_cae; BEiT's go to BEiT-style
    # targets, test_famt_beit): refused, naming what a BEiT encoder would need
    encoder = _pretrained_encoder(famt_checkpoint)
    beit = {f'backbone.{k}': v for k, v in encoder.items()}
    beit['backbone.layers.0.attn.relative_position_bias_table'] = torch.zeros(52, 2)
    torch.save({'state_dict': beit}, tmp_path / 'beit.pth')
    with pytest.raises(SystemExit, match=r'not a BEiT encoder: missing layers\.0\.attn\.q_bias'):
        convert([str(tmp_path / 'beit.pth'), str(tmp_path / 'o.pth'), '--target', 'mmdet'])
    # the tiny ViT is not the ViT-B the COCO / ADE20K configs build
    with pytest.raises(SystemExit, match=r'wrong architecture.*embed_dims: checkpoint 32 vs '
                                         r'expected 768'):
        convert([famt_checkpoint, str(tmp_path / 'o.pth'), '--target', 'mmdet', '--arch', 'base'])
    assert not osp.exists(tmp_path / 'o.pth')
