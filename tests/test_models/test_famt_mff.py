"""FAMTMFF against mmpretrain's own MFF, on a tiny ViT (3 layers, all fused)."""
import copy

import torch
from mmpretrain.registry import MODELS

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.models import FAMTMFF
from famt_mm.models.famt_algorithm import famt_algorithm_for, is_pretrain_only
from tests.test_models.algorithm_helpers import keep_visible_masking, samples

ARCH = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
WARM_UP_THROW = dict(random_mask_ratio=0.45, random_throw_ratio=0.40)  # 7 / 6 / 3 of 16


def mff_cfg(famt=True, **gen):
    """mmpretrain's MFF (``famt=False``) or, with FAMTMFF.famt_types merged on, FAMT MFF."""
    cfg = dict(
        type='MFF',
        backbone=dict(type='MFFViT', arch=ARCH, img_size=32, patch_size=8, mask_ratio=0.75,
                      out_indices=[0, 1, 2]),
        neck=dict(type='MAEPretrainDecoder', num_patches=16, patch_size=8, in_chans=3,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2,
                  mlp_ratio=2.),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')))
    if famt:
        cfg = copy.deepcopy(cfg)
        for key, value in FAMTMFF.famt_types.items():
            cfg[key] = dict(cfg[key], **value) if isinstance(value, dict) else value
        cfg['mask_generator'] = dict(type='FAMTMaskGenerator', **gen)
    return cfg


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_uniform_weights_nothing_thrown_equal_mmpretrain_mff_loss_and_every_gradient():
    torch.manual_seed(0)
    famt = build(mff_cfg(random_mask_ratio=0.75)).double()  # random phase: uniform, no throw
    with torch.no_grad():  # a fusion that is not uniform, so every level's weight matters
        famt.backbone.proj_weights.copy_(torch.randn(3, 1, 1, 1))
    mff = build(mff_cfg(famt=False)).double()
    mff.load_state_dict(famt.state_dict(), strict=True)
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    torch.manual_seed(1)
    ours = famt.loss(x, samples(3))
    torch.manual_seed(1)
    split = famt.famt_split(samples(3), 3, 'cpu')
    assert [s.shape[1] for s in split[:3]] == [12, 0, 4]
    mff.backbone.random_masking = keep_visible_masking(split.visible, split.masked)
    ref = mff.loss(x, samples(3))
    assert set(ours) == set(ref) == {'loss', 'weight_0', 'weight_1', 'weight_2'}
    for key in ref:
        torch.testing.assert_close(ours[key], ref[key], rtol=1e-12, atol=0)
    ours['loss'].backward()
    ref['loss'].backward()
    grads = dict(mff.named_parameters())
    checked = 0
    for name, param in famt.named_parameters():
        if param.grad is None:
            assert grads[name].grad is None, name
            continue
        torch.testing.assert_close(param.grad, grads[name].grad, rtol=1e-10, atol=1e-13,
                                   msg=name)
        checked += 1
    assert checked == sum(p.requires_grad for p in famt.parameters())  # every one has a gradient
    assert famt.backbone.proj_weights.grad.abs().min() > 0  # the fusion weights learn


def repaint(x, ids, patch=8):
    """A copy of ``x`` with the patches ``ids`` (B x K) of every image replaced by noise."""
    y = x.clone()
    for b in range(x.shape[0]):
        for i in ids[b].tolist():
            r, c = divmod(i, 32 // patch)
            y[b, :, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = torch.randn(
                3, patch, patch, dtype=x.dtype) * 5
    return y


def test_thrown_patches_never_reach_the_encoder_the_decoder_or_the_loss():
    torch.manual_seed(0)
    model = build(mff_cfg(**WARM_UP_THROW)).double()
    seen = {}
    model.backbone.layers[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('encoder', a[0].shape[1]))
    model.neck.decoder_blocks[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('decoder', a[0].shape[1]))
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)

    def step(inputs):
        model.zero_grad()
        inputs = inputs.clone().requires_grad_()
        torch.manual_seed(3)  # the same draw every time
        loss = model.loss(inputs, samples(2))['loss']
        loss.backward()
        return loss, inputs.grad, [p.grad.clone() for p in model.parameters() if p.requires_grad]

    loss, pixel_grad, grads = step(x)
    assert seen == dict(encoder=1 + 3, decoder=1 + 3 + 7)  # CLS + visible (+ masked)
    torch.manual_seed(3)
    split = model.famt_split(samples(2), 2, 'cpu')
    assert [s.shape[1] for s in split[:3]] == [7, 6, 3]
    # no gradient reaches a thrown pixel; visible ones (encoded) and masked ones (target) do
    per_patch = pixel_grad.abs().reshape(2, 3, 4, 8, 4, 8).sum((1, 3, 5)).flatten(1)
    assert (per_patch.gather(1, split.thrown) == 0).all()
    assert (per_patch.gather(1, split.visible) > 0).all()
    assert (per_patch.gather(1, split.masked) > 0).all()
    # thrown pixels change nothing: loss and every gradient as before
    loss2, _, grads2 = step(repaint(x, split.thrown))
    assert torch.equal(loss2, loss)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads2))
    assert not torch.equal(step(repaint(x, split.visible[:, :1]))[0], loss)


def test_refresh_reconstruction_and_contract():
    torch.manual_seed(0)
    model = build(mff_cfg())
    assert famt_algorithm_for('MFF') is FAMTMFF
    # conversion drops the fusion (a module name stands for its keys), keeps the ViT
    assert set(FAMTMFF.pretrain_only_keys) == {'proj_layers', 'proj_weights'}
    encoder_keys = set(model.backbone.state_dict())
    dropped = {k for k in encoder_keys if is_pretrain_only(k)}
    assert dropped == {'proj_weights'} | {f'proj_layers.{i}.{p}' for i in range(2)
                                          for p in ('weight', 'bias')}
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    # the whole-image features (MFFViT's own forward(x, None) masks at random)
    feats = model.backbone(x, None)
    assert isinstance(feats, tuple) and feats[0].shape == (2, 17, 32)
    assert torch.equal(model.backbone(x, None)[0], feats[0])
    ctx = model.famt_context(x)  # the refresh's term context: every patch of the last layer
    assert ctx.attn_cls.shape == (2, 2, 16) and ctx.tokens.shape == (2, 16, 32)
    weights, fallback = model.compute_famt_weights(x)
    assert weights.shape == (2, 4, 4) and not fallback.any()
    split = model.famt_split(samples(2), 2, 'cpu')
    recon = model.famt_reconstruct(x, split)
    assert recon.shape == x.shape
    patches = recon.reshape(2, 3, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).flatten(1, 2)
    source = x.reshape(2, 3, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).flatten(1, 2)
    rows = torch.arange(2)[:, None]
    assert torch.equal(patches[rows, split.visible], source[rows, split.visible])
    assert (patches[rows, split.thrown] == 0).all()


def without_scope(value):
    """A config tree without mmengine's ``_scope_`` tags (set on ``mmpretrain::`` bases)."""
    if isinstance(value, dict):
        return {k: without_scope(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [without_scope(v) for v in value]
    return value


def test_in1k_config_is_mmpretrains_recipe_with_famt_and_takes_a_step():
    import os.path as osp

    import mmpretrain
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from famt_mm.models.famt_sampling import plackett_luce_split
    from tests.conftest import REPO
    recipe = Config.fromfile(osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'mff',
                                      'mff_vit-base-p16_8xb512-amp-coslr-300e_in1k.py'))
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'famt_mff_vit-b-p16_in1k.py'))
    ours, plain = without_scope(cfg.model.to_dict()), without_scope(recipe.model.to_dict())
    assert ours.pop('mask_generator') == dict(type='FAMTMaskGenerator', mask_ratio=0.45,
                                              throw_ratio=0.40)
    for key, value in FAMTMFF.famt_types.items():
        plain[key] = dict(plain[key], **value) if isinstance(value, dict) else value
    assert ours == plain  # the recipe's model (fused levels, decoder, loss), FAMT types
    assert cfg.train_cfg.max_epochs == 300 and cfg.optim_wrapper.type == 'AmpOptimWrapper'
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert model.grid_hw == (14, 14) and model.backbone.out_indices == [0, 2, 4, 6, 8, 11]
    split = model.split_from_units(plackett_luce_split(torch.ones(1, 196), 88, 78))
    losses = model.famt_loss(torch.randn(1, 3, 224, 224), samples(1), split)
    losses['loss'].backward()
    assert torch.isfinite(losses['loss']) and len(losses) == 1 + 6
    assert model.backbone.proj_layers[0].weight.grad.abs().sum() > 0
