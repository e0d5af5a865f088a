"""FAMTMAE against mmpretrain's own MAE, on a tiny ViT."""
import copy

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.bank import WeightBank
from famt_mm.models import famt_weights
from tests.test_models.algorithm_helpers import keep_visible_masking

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def tiny_cfg(famt=True, mask_ratio=0.45, throw_ratio=0.40, **gen):
    cfg = dict(
        type='MAE',
        backbone=dict(type='MAEViT', arch=ARCH, img_size=32, patch_size=8, mask_ratio=0.75),
        neck=dict(type='MAEPretrainDecoder', num_patches=16, patch_size=8, in_chans=3,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2,
                  mlp_ratio=2.),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')))
    if famt:
        cfg = copy.deepcopy(cfg)
        cfg.update(type='FAMTMAE', mask_generator=dict(
            type='FAMTMaskGenerator', mask_ratio=mask_ratio, throw_ratio=throw_ratio, **gen))
        cfg['backbone']['type'] = 'FAMTViT'
        cfg['neck']['type'] = 'FAMTPretrainDecoder'
        cfg['head']['type'] = 'FAMTPretrainHead'
    return cfg


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def samples(n, boxes=None, flips=None):
    out = []
    for i in range(n):
        meta = dict(sample_idx=i, famt_crop=(0.0, 0.0, 1.0, 1.0) if boxes is None else boxes[i],
                    flip=False if flips is None else flips[i], flip_direction='horizontal')
        out.append(DataSample(metainfo=meta))
    return out


def test_random_phase_matches_mmpretrain_mae_loss_for_the_same_ids():
    torch.manual_seed(0)
    famt = build(tiny_cfg(mask_ratio=0.75, throw_ratio=0.0))
    mae = build(tiny_cfg(famt=False))
    missing, unexpected = mae.load_state_dict(famt.state_dict(), strict=False)
    assert not missing and not unexpected
    x = torch.randn(3, 3, 32, 32)
    ids_masked, ids_thrown, ids_visible = famt.mask_generator.sample(
        samples(3), famt.grid_hw, 3, x.device)
    assert ids_thrown.shape[1] == 0 and ids_visible.shape[1] == 4 and ids_masked.shape[1] == 12

    mae.backbone.random_masking = keep_visible_masking(ids_visible, ids_masked)
    ref = mae.loss(x, samples(3))['loss']
    latent = famt.backbone.forward_famt(x, ids_visible)
    pred = famt.neck.forward_famt(latent, ids_visible, ids_masked)
    ours = famt.head.loss_famt(pred, x, ids_masked)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_encoder_and_decoder_see_only_their_tokens():
    model = build(tiny_cfg())  # L=16: 7 masked, int(16*.85)-7 = 6 thrown, 3 visible
    seen = {}
    model.backbone.layers[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('enc', a[0].shape[1]))
    model.neck.decoder_blocks[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('dec', a[0].shape[1]))
    gen = model.mask_generator
    gen.set_bank(WeightBank.from_maps(
        famt_weights.quantize_weights(torch.rand(4, 16) + 0.1, 'float16').view(4, 4, 4)))
    gen.famt_active = True
    x = torch.randn(4, 3, 32, 32)
    loss = model.loss(x, samples(4))['loss']
    loss.backward()
    n_mask, n_throw = 7, 6
    assert seen['enc'] == 1 + 16 - n_mask - n_throw
    assert seen['dec'] == 16 - n_throw + 1
    assert torch.isfinite(loss)


def test_famt_phase_needs_a_bank_and_crop_boxes():
    model = build(tiny_cfg())
    model.mask_generator.famt_active = True
    with pytest.raises(RuntimeError, match='without a weight bank'):
        model.loss(torch.randn(2, 3, 32, 32), samples(2))
    model.mask_generator.set_bank(WeightBank.from_maps(torch.ones(2, 4, 4, dtype=torch.float16)))
    with pytest.raises(KeyError, match='famt_crop'):
        model.loss(torch.randn(2, 3, 32, 32), [DataSample(metainfo=dict(sample_idx=i))
                                                for i in range(2)])
    with pytest.raises(IndexError, match='does not match the dataset'):
        model.loss(torch.randn(3, 3, 32, 32), samples(3))


def test_bank_weights_drive_which_patches_are_masked():
    model = build(tiny_cfg(mask_ratio=0.25, throw_ratio=0.25))
    gen = model.mask_generator
    bank = torch.full((1, 4, 4), 1e-3)
    bank[0, :, 0] = 1.0  # left column is hot
    gen.set_bank(WeightBank.from_maps(
        famt_weights.quantize_weights(bank.view(1, 16), 'float16').view(1, 4, 4)))
    gen.famt_active = True
    torch.manual_seed(0)
    hot = {0, 4, 8, 12}
    hits = 0
    for _ in range(50):
        ids_masked, _, _ = gen.sample(samples(1), (4, 4), 1, "cpu")
        hits += len(hot & set(ids_masked[0].tolist()))
    assert hits / 50 > 3.5  # 4 masked per draw; hot patches almost always win
    # With a horizontal flip, the hot column is the right one.
    hits = 0
    for _ in range(50):
        ids_masked, _, _ = gen.sample(samples(1, flips=[True]), (4, 4), 1, 'cpu')
        hits += len({3, 7, 11, 15} & set(ids_masked[0].tolist()))
    assert hits / 50 > 3.5


def test_refresh_terms_match_an_explicit_computation():
    torch.manual_seed(0)
    model = build(tiny_cfg())
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    ctx = model.famt_context(x)
    attn_cls, tokens = ctx.attn_cls, ctx.tokens
    # Reference: every block explicitly, keep the last block's attention.
    bb = model.backbone
    h = bb.patch_embed(x)[0] + bb.pos_embed[:, 1:]
    h = torch.cat([(bb.cls_token + bb.pos_embed[:, :1]).expand(2, -1, -1), h], 1)
    for layer in bb.layers:
        a = layer.attn
        qkv = a.qkv(layer.ln1(h)).reshape(2, 17, 3, a.num_heads, a.head_dims).permute(2, 0, 3, 1, 4)
        probs = ((qkv[0] @ qkv[1].transpose(-2, -1)) * a.head_dims ** -0.5).softmax(-1)
        out = (probs @ qkv[2]).transpose(1, 2).reshape(2, 17, a.embed_dims)
        h = h + a.proj(out)
        h = layer.ffn(layer.ln2(h), identity=h)
    torch.testing.assert_close(attn_cls, probs[:, :, 0, 1:], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(tokens, h[:, 1:], rtol=1e-4, atol=1e-5)
    weights, fallback = model.compute_famt_weights(x)
    expected = famt_weights.combine_terms([famt_weights.cls_attention_term(probs[:, :, 0, 1:]),
                                           famt_weights.frequency_term(h[:, 1:], 0.15)])
    assert weights.shape == (2, 4, 4) and not fallback.any()
    torch.testing.assert_close(weights.view(2, 16) / weights.view(2, 16).sum(1, keepdim=True),
                               expected / expected.sum(1, keepdim=True), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize('kwargs, match', [
    (dict(mask_ratio=1.2), 'mask_ratio'),
    (dict(mask_ratio=0.6, throw_ratio=0.4), 'no visible patch'),
    (dict(combine='max'), 'combine mode'),
    (dict(terms=('attention', 'frequency_3d')), "unknown weight term 'frequency_3d'"),
    (dict(terms=()), 'one or more'),
    (dict(term_args=dict(frequency=dict(cutof=0.2))), r"term_args\['frequency'\]"),
    (dict(term_args=dict(frequency=dict(cutoff=0.0))), 'cutoff=0.0 must be > 0'),
    (dict(eps=0.0), 'eps'),
])
def test_mask_generator_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='FAMTMaskGenerator', **kwargs))


def test_famt_model_interface_of_famt_mae_and_refusal_of_a_plain_mae():
    from famt_mm.models.famt_algorithm import FAMTAlgorithm, check_famt_model, is_famt_model
    model = build(tiny_cfg())
    assert is_famt_model(model) and isinstance(model, FAMTAlgorithm)
    assert check_famt_model(model, 'FAMTWeightHook') is model
    assert model.grid_hw == (4, 4) and model.input_hw == (32, 32)
    weights, fallback = model.compute_famt_weights(torch.randn(2, 3, 32, 32))
    assert weights.shape == (2, 4, 4) and weights.dtype == torch.float32
    assert fallback.shape == (2, ) and fallback.dtype == torch.bool
    with pytest.raises(TypeError, match='FAMTWeightHook needs a FAMT algorithm .* got MAE, which '
                                        'is not one; FAMT for MAE is FAMTMAE'):
        check_famt_model(build(tiny_cfg(famt=False)), 'FAMTWeightHook')


# -- the warm-up throw: random_throw_ratio in the random phase ---------------------------------
WARM_UP_THROW = dict(random_mask_ratio=0.45, random_throw_ratio=0.40)  # FAMT's budget


def repaint(x, ids, patch=8, grid_w=4):
    """``x`` with new random pixels on the patches ``ids`` (B x K) of each image."""
    y = x.clone()
    for b in range(x.shape[0]):
        for i in ids[b].tolist():
            r, c = divmod(i, grid_w)
            y[b, :, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = \
                torch.randn(3, patch, patch, dtype=x.dtype) * 5
    return y


def test_warm_up_throw_counts_and_thrown_patches_never_reach_the_encoder():
    torch.manual_seed(0)
    model = build(tiny_cfg(**WARM_UP_THROW)).double()
    gen = model.mask_generator
    assert not gen.famt_active and gen.bank is None  # the random phase needs no bank
    # L = 16: both phases split 7 masked / int(16 * .85) - 7 = 6 thrown / 3 visible
    assert gen.check_grid(16) == ((7, 6, 3), (7, 6, 3))
    seen = {}
    model.backbone.layers[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('enc', a[0].shape[1]))
    model.neck.decoder_blocks[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('dec', a[0].shape[1]))
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)

    def loss_of(inputs):
        torch.manual_seed(3)  # the same draw every time
        return model.loss(inputs, samples(4))['loss']

    loss = loss_of(x)
    assert seen == dict(enc=1 + 3, dec=1 + 3 + 7)  # CLS + visible; CLS + visible + masked
    torch.manual_seed(3)
    ids_masked, ids_thrown, ids_visible = gen.sample(samples(4), model.grid_hw, 4, 'cpu')
    assert (ids_masked.shape[1], ids_thrown.shape[1], ids_visible.shape[1]) == (7, 6, 3)
    every = torch.cat([ids_masked, ids_thrown, ids_visible], 1).sort(1).values
    assert torch.equal(every, torch.arange(16).expand(4, -1))
    # thrown pixels change nothing (no encoder token, no loss); masked ones carry the loss
    assert torch.equal(loss_of(repaint(x, ids_thrown)), loss)
    assert not torch.equal(loss_of(repaint(x, ids_masked[:, :1])), loss)
    assert not torch.equal(loss_of(repaint(x, ids_visible[:, :1])), loss)


def test_warm_up_throw_draws_every_patch_alike():
    gen = MODELS.build(dict(type='FAMTMaskGenerator', **WARM_UP_THROW))
    torch.manual_seed(0)
    n = 4000
    ids_masked, ids_thrown, _ = gen.sample(None, (4, 4), n, 'cpu')  # random phase: no samples
    for ids, p in ((ids_masked, 7 / 16), (ids_thrown, 6 / 16)):
        share = torch.bincount(ids.flatten(), minlength=16).double() / n
        se = (p * (1 - p) / n) ** 0.5
        assert (share - p).abs().max() < 5 * se, share  # uniform: each patch at its share


@pytest.mark.parametrize('throw', [None, 0, 0.0])
def test_warm_up_without_throw_is_unchanged_and_equals_mmpretrain_mae_in_float64(throw):
    from famt_mm.models.famt_sampling import plackett_luce_split
    torch.manual_seed(0)
    famt = build(tiny_cfg(random_throw_ratio=throw)).double()  # random_mask_ratio 0.75
    mae = build(tiny_cfg(famt=False)).double()
    missing, unexpected = mae.load_state_dict(famt.state_dict(), strict=False)
    assert not missing and not unexpected
    assert famt.mask_generator.random_throw_ratio == 0.0
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    torch.manual_seed(1)
    ours = famt.loss(x, samples(3))['loss']
    # the random phase's draw as it was before the setting existed: uniform, 12 / 0 / 4
    torch.manual_seed(1)
    ids_masked, ids_thrown, ids_visible = plackett_luce_split(torch.ones(3, 16), 12, 0)
    torch.manual_seed(1)
    drawn = famt.mask_generator.sample(samples(3), famt.grid_hw, 3, 'cpu')
    for got, want in zip(drawn, (ids_masked, ids_thrown, ids_visible)):
        assert torch.equal(got, want)

    mae.backbone.random_masking = keep_visible_masking(ids_visible, ids_masked)
    ref = mae.loss(x, samples(3))['loss']
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize('value, error, match', [
    ('0.4', TypeError, r"random_throw_ratio must be None or a float in \[0, 1\), got str '0.4'"),
    (True, TypeError, 'random_throw_ratio .* got bool True'),
    (1.0, ValueError, r'random_throw_ratio=1.0 must lie in \[0, 1\)'),
    (-0.1, ValueError, r'random_throw_ratio=-0.1 must lie in \[0, 1\)'),
    (float('nan'), ValueError, 'random_throw_ratio=nan must lie'),
    (0.40, ValueError, r'random_mask_ratio \+ random_throw_ratio = 0.75 \+ 0.4 >= 1 .* '
                       r'random_mask_ratio=0.45, random_throw_ratio=0.40'),
])
def test_random_throw_ratio_is_checked_at_construction(value, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(dict(type='FAMTMaskGenerator', random_throw_ratio=value))


def test_warm_up_throw_through_the_runner_and_the_switch(tmp_path):
    """A tiny Runner run: epoch 0 throws uniformly at FAMT's budget, the hook switches to
    FAMT at epoch 1 with a refresh, and the encoder sees 1 + 3 tokens in every step."""
    from mmengine.runner import Runner

    from tests.conftest import tiny_cfg as tiny_runner_cfg
    opts = {f'model.mask_generator.{k}': v for k, v in WARM_UP_THROW.items()}
    runner = Runner.from_cfg(tiny_runner_cfg(tmp_path / 'work', max_epochs=2, start_epoch=1,
                                             interval=1, **opts))
    gen = runner.model.mask_generator
    draws, encoder_tokens = [], []
    original = gen.sample

    def sample(*args, **kwargs):
        sets = original(*args, **kwargs)
        draws.append((runner.epoch, gen.famt_active, tuple(s.shape[1] for s in sets)))
        return sets
    gen.sample = sample
    # only training steps (the refresh runs the encoder on all 16 patches, without grad)
    runner.model.backbone.layers[0].register_forward_pre_hook(
        lambda m, a: encoder_tokens.append(a[0].shape[1]) if torch.is_grad_enabled() else None)
    runner.train()
    assert draws == [(0, False, (7, 6, 3))] * 5 + [(1, True, (7, 6, 3))] * 5  # 40 images / 8
    assert encoder_tokens == [1 + 3] * 10
    assert gen.bank.filled
