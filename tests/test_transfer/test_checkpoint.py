"""StrictPretrained: every key loaded through a real init_weights, or a loud error."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS as MMENGINE_MODELS  # noqa: F401
from mmpretrain.registry import MODELS

import famt_mm  # noqa: F401
from famt_mm.transfer import (load_strict_pretrained, load_strict_pretrained_modules,
                              resize_pos_embed)

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def _pretrain_checkpoint(path, seed=0):
    """A full mmengine-style FAMT checkpoint (non-tensor entries included)."""
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        type='FAMTMAE',
        backbone=dict(type='FAMTViT', arch=ARCH, img_size=32, patch_size=8, mask_ratio=0.75),
        neck=dict(type='FAMTPretrainDecoder', num_patches=16, patch_size=8, in_chans=3,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2),
        head=dict(type='FAMTPretrainHead', norm_pix=True, patch_size=8,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')),
        mask_generator=dict(type='FAMTMaskGenerator')))
    model.init_weights()
    # perturb so that a re-initialised tensor can never equal the checkpoint
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    state = model.state_dict()
    torch.save({'meta': {'epoch': 1, 'note': object.__class__.__name__},
                'state_dict': state, 'message_hub': {'x': 1}}, path)
    return {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}


def init_weights_strict(model):
    """What StrictPretrainedHook and the Runner do: load first, then init_weights."""
    load_strict_pretrained_modules(model)
    model.init_weights()


def _classifier(img_size=32, **backbone):
    cfg = dict(type='VisionTransformer', arch=ARCH, img_size=img_size, patch_size=8,
               out_type='cls_token', final_norm=True)
    cfg.update(backbone)
    return MODELS.build(dict(
        type='ImageClassifier', backbone=cfg,
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32)))


def test_strict_pretrained_survives_init_weights(tmp_path):
    ckpt = tmp_path / 'famt.pth'
    expected = _pretrain_checkpoint(ckpt)
    model = _classifier(init_cfg=dict(type='StrictPretrained', checkpoint=str(ckpt),
                                      prefix='backbone.'))
    init_weights_strict(model)
    got = model.backbone.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        # pos_embed is re-drawn and FFN weights re-initialised after an init_cfg
        # runs: each must still hold the checkpoint's value
        assert torch.equal(got[key], value), key


def test_reached_inside_init_weights_it_refuses_with_the_fix(tmp_path):
    ckpt = tmp_path / 'famt.pth'
    _pretrain_checkpoint(ckpt)
    model = _classifier(init_cfg=dict(type='StrictPretrained', checkpoint=str(ckpt),
                                      prefix='backbone.'))
    with pytest.raises(ValueError, match=r"inside init_weights.*StrictPretrainedHook.*"
                                         r"load_strict_pretrained_modules\(model\)"):
        model.init_weights()


def test_plain_pretrained_is_overwritten_for_contrast(tmp_path):
    """Why StrictPretrained loads before init_weights: mmpretrain's ViT re-draws
    pos_embed unless the type is literally 'Pretrained'."""
    ckpt = tmp_path / 'famt.pth'
    expected = _pretrain_checkpoint(ckpt)
    model = _classifier()
    model.backbone.init_cfg = dict(type='Normal', layer='Linear', std=0.01)
    model.init_weights()
    assert not torch.equal(model.backbone.pos_embed, expected['pos_embed'])


def test_missing_prefix_names_prefix_and_file(tmp_path):
    ckpt = tmp_path / 'famt.pth'
    _pretrain_checkpoint(ckpt)
    model = _classifier(init_cfg=dict(type='StrictPretrained', checkpoint=str(ckpt),
                                      prefix='encoder.'))
    with pytest.raises(ValueError, match=r"prefix 'encoder\.'") as err:
        init_weights_strict(model)
    assert 'famt.pth' in str(err.value) and 'backbone.' in str(err.value)


def test_unexpected_and_missing_keys_are_named(tmp_path):
    ckpt = tmp_path / 'famt.pth'
    _pretrain_checkpoint(ckpt)
    # fine-tuning style backbone: no final ln1, a fresh ln2 after pooling
    model = _classifier(final_norm=False, out_type='avg_featmap',
                        init_cfg=dict(type='StrictPretrained', checkpoint=str(ckpt),
                                      prefix='backbone.'))
    with pytest.raises(ValueError) as err:
        init_weights_strict(model)
    msg = str(err.value)
    assert 'missing keys (2): [ln2.bias, ln2.weight]' in msg
    assert 'unexpected keys (2): [ln1.bias, ln1.weight]' in msg
    assert str(ckpt) in msg


def test_mae_fine_tune_backbone_with_allowed_missing_and_ignored_keys(tmp_path):
    """MAE fine-tuning: the final norm ln1 is dropped, a fresh ln2 follows pooling."""
    ckpt = tmp_path / 'famt.pth'
    expected = _pretrain_checkpoint(ckpt)
    model = _classifier(final_norm=False, out_type='avg_featmap', init_cfg=dict(
        type='StrictPretrained', checkpoint=str(ckpt), prefix='backbone.',
        allowed_missing=['ln2.'], ignored_keys=['ln1.']))
    init_weights_strict(model)
    assert torch.equal(model.backbone.layers[1].ffn.layers[1].weight,
                       expected['layers.1.ffn.layers.1.weight'])
    assert torch.equal(model.backbone.ln2.weight, torch.ones(32))  # its own init
    # an ignore pattern that matches nothing is a typo, not a silent no-op
    model = _classifier(final_norm=False, out_type='avg_featmap', init_cfg=dict(
        type='StrictPretrained', checkpoint=str(ckpt), prefix='backbone.',
        allowed_missing=['ln2.'], ignored_keys=['norm.']))
    with pytest.raises(ValueError, match=r"ignored_keys \['norm\.'\] match no checkpoint key"):
        init_weights_strict(model)


def test_wrong_architecture_names_key_and_shapes(tmp_path):
    ckpt = tmp_path / 'famt.pth'
    _pretrain_checkpoint(ckpt)
    wide = MODELS.build(dict(type='VisionTransformer', img_size=32, patch_size=8,
                             arch=dict(ARCH, feedforward_channels=48)))
    with pytest.raises(ValueError, match=r'layers\.0\.ffn\.layers\.0\.0\.weight: checkpoint '
                                         r'\(64, 32\) vs model \(48, 32\)'):
        load_strict_pretrained(wide, str(ckpt), prefix='backbone.')


def test_text_file_and_missing_file(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('these are not weights\n')
    model = _classifier()
    with pytest.raises(ValueError, match='notes.pth is not a PyTorch checkpoint'):
        load_strict_pretrained(model.backbone, str(text))
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        load_strict_pretrained(model.backbone, str(tmp_path / 'nowhere.pth'))


def test_pos_embed_resized_with_cls_kept(tmp_path):
    ckpt = tmp_path / 'famt.pth'
    expected = _pretrain_checkpoint(ckpt)  # 4 x 4 grid + CLS
    model = _classifier(img_size=48, init_cfg=dict(
        type='StrictPretrained', checkpoint=str(ckpt), prefix='backbone.'))
    init_weights_strict(model)
    pos = model.backbone.pos_embed
    assert pos.shape == (1, 1 + 36, 32)
    assert torch.equal(pos[:, :1], expected['pos_embed'][:, :1])
    grid = expected['pos_embed'][:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(6, 6), mode='bicubic', align_corners=False)
    assert torch.allclose(pos[:, 1:], want.permute(0, 2, 3, 1).reshape(1, 36, 32), atol=1e-6)
    # and the model runs at the new size
    out = model.backbone(torch.randn(1, 3, 48, 48))
    assert out[0].shape == (1, 32)


def test_resize_pos_embed_drops_cls_when_target_has_none():
    pos = torch.arange(5 * 2, dtype=torch.float32).reshape(1, 5, 2)
    out = resize_pos_embed(pos, (2, 2), (2, 2), src_extra=1, dst_extra=0)
    assert torch.allclose(out, pos[:, 1:])
