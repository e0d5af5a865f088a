"""FAMTEVA against mmpretrain's own EVA, on a tiny ViT and a tiny random CLIP teacher."""
import copy

import torch
from mmpretrain.registry import MODELS

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.models import FAMTEVA
from famt_mm.models.famt_algorithm import famt_algorithm_for
from tests.test_models.algorithm_helpers import keep_visible_masking, samples

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
WARM_UP_THROW = dict(random_mask_ratio=0.45, random_throw_ratio=0.40)  # 7 / 6 / 3 of 16


def eva_cfg(famt=True, **gen):
    """mmpretrain's EVA (``famt=False``) or, with FAMTEVA.famt_types merged on, FAMT EVA."""
    cfg = dict(
        type='EVA',
        backbone=dict(type='MAEViT', arch=ARCH, img_size=32, patch_size=8, mask_ratio=0.75),
        neck=dict(type='MAEPretrainDecoder', num_patches=16, patch_size=8, in_chans=3,
                  embed_dim=32, decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2,
                  mlp_ratio=2., predict_feature_dim=24),
        head=dict(type='MIMHead',
                  loss=dict(type='CosineSimilarityLoss', shift_factor=2.0, scale_factor=2.0)),
        target_generator=dict(type='RandomCLIPGenerator', img_size=32, patch_size=8, width=64,
                              num_layers=2, out_dims=24))
    if famt:
        cfg = copy.deepcopy(cfg)
        for key, value in FAMTEVA.famt_types.items():
            cfg[key] = dict(cfg[key], **value) if isinstance(value, dict) else value
        cfg['mask_generator'] = dict(type='FAMTMaskGenerator', **gen)
    return cfg


def build(cfg, double=False):
    model = MODELS.build(cfg)
    model.init_weights()
    if double:  # CLIP's LayerNorm computes in float32 (mmpretrain's): the teacher stays float32
        model.double().target_generator.float()
    return model


def test_random_clip_generator_is_mmpretrains_clip_generator_on_those_weights(tmp_path):
    torch.manual_seed(0)
    teacher = MODELS.build(dict(type='RandomCLIPGenerator', img_size=32, patch_size=8,
                                width=64, num_layers=2, out_dims=24))
    path = tmp_path / 'clip.pth'
    torch.save(teacher.tokenizer.state_dict(), path)
    released = MODELS.build(dict(type='CLIPGenerator', tokenizer_path=str(path)))
    x = torch.randn(2, 3, 32, 32)
    features, attention = teacher(x)
    assert features.shape == (2, 17, 24) and attention.shape == (2, 17, 17)
    for ours, theirs in zip((features, attention), released(x)):
        assert torch.equal(ours, theirs)


def test_uniform_weights_nothing_thrown_equal_mmpretrain_eva_loss_and_every_gradient():
    torch.manual_seed(0)
    famt = build(eva_cfg(random_mask_ratio=0.75), double=True)  # random phase: uniform, no throw
    eva = build(eva_cfg(famt=False), double=True)
    eva.load_state_dict(famt.state_dict(), strict=True)  # the teacher too
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    torch.manual_seed(1)
    ours = famt.loss(x, samples(3))
    torch.manual_seed(1)
    split = famt.famt_split(samples(3), 3, 'cpu')
    assert [s.shape[1] for s in split[:3]] == [12, 0, 4]
    eva.backbone.random_masking = keep_visible_masking(split.visible, split.masked)
    ref = eva.loss(x, samples(3))
    assert set(ours) == set(ref) == {'loss'}
    torch.testing.assert_close(ours['loss'], ref['loss'], rtol=1e-12, atol=0)
    ours['loss'].backward()
    ref['loss'].backward()
    grads = dict(eva.named_parameters())
    checked = 0
    for name, param in famt.named_parameters():
        if param.grad is None:
            assert grads[name].grad is None, name
            continue
        torch.testing.assert_close(param.grad, grads[name].grad, rtol=1e-10, atol=1e-13,
                                   msg=name)
        checked += 1
    # every parameter but the teacher's has its gradient; the teacher (no_grad forward) none
    teacher = {id(p) for p in famt.target_generator.parameters()}
    assert checked == sum(p.requires_grad and id(p) not in teacher
                          for p in famt.parameters()) > 0
    assert all(p.grad is None for p in famt.target_generator.parameters())


def test_thrown_patches_never_reach_the_encoder_the_decoder_or_the_loss():
    torch.manual_seed(0)
    model = build(eva_cfg(**WARM_UP_THROW), double=True)
    seen = {}
    model.backbone.layers[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('encoder', a[0].shape[1]))
    model.neck.decoder_blocks[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('decoder', a[0].shape[1]))
    model.neck.decoder_pred.register_forward_hook(
        lambda m, a, out: seen.__setitem__('pred', out.detach().clone()))
    model.target_generator.register_forward_pre_hook(
        lambda m, a: seen.__setitem__('teacher', a[0]))
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)

    def step(inputs):
        model.zero_grad()
        inputs = inputs.clone().requires_grad_()
        torch.manual_seed(3)  # the same draw every time
        loss = model.loss(inputs, samples(2))['loss']
        loss.backward()
        return loss, inputs, [p.grad.clone() for p in model.parameters() if p.grad is not None]

    loss, inputs, grads = step(x)
    assert (seen['encoder'], seen['decoder']) == (1 + 3, 1 + 3 + 7)  # CLS + visible (+ masked)
    assert seen['pred'].shape == (2, 7, 24)  # a prediction, and a loss term, per masked patch
    assert seen['teacher'] is inputs  # the teacher sees the whole image, as EVA's
    torch.manual_seed(3)
    split = model.famt_split(samples(2), 2, 'cpu')
    assert [s.shape[1] for s in split[:3]] == [7, 6, 3]
    # gradient reaches the visible pixels only (the teacher's targets carry none)
    per_patch = inputs.grad.abs().reshape(2, 3, 4, 8, 4, 8).sum((1, 3, 5)).flatten(1)
    assert (per_patch.gather(1, split.visible) > 0).all()
    assert (per_patch.gather(1, torch.cat([split.thrown, split.masked], 1)) == 0).all()
    # thrown pixels change the teacher's targets (it attends over them) but not the student
    pred = seen['pred']
    y = x.clone()
    for b in range(2):
        for i in split.thrown[b].tolist():
            r, c = divmod(i, 4)
            y[b, :, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = 5 * torch.randn(3, 8, 8)
    step(y)
    assert torch.equal(seen['pred'], pred)


def test_refresh_no_pixels_and_contract():
    torch.manual_seed(0)
    model = build(eva_cfg())
    assert famt_algorithm_for('EVA') is FAMTEVA
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    ctx = model.famt_context(x)  # the refresh's term context: the student encoder
    assert ctx.attn_cls.shape == (2, 2, 16) and ctx.tokens.shape == (2, 16, 32)
    weights, fallback = model.compute_famt_weights(x)
    assert weights.shape == (2, 4, 4) and not fallback.any()
    assert model.famt_reconstruct(x, model.famt_split(samples(2), 2, 'cpu')) is None


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
    recipe = Config.fromfile(osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'eva',
        'eva-mae-style_vit-base-p16_16xb256-coslr-400e_in1k.py'))
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'famt_eva_vit-b-p16_in1k.py'))
    ours, plain = without_scope(cfg.model.to_dict()), without_scope(recipe.model.to_dict())
    assert ours.pop('mask_generator') == dict(type='FAMTMaskGenerator', mask_ratio=0.45,
                                              throw_ratio=0.40)
    for key, value in FAMTEVA.famt_types.items():
        plain[key] = dict(plain[key], **value) if isinstance(value, dict) else value
    assert ours == plain  # the recipe's model, its released CLIP teacher, FAMT types
    assert ours['target_generator']['type'] == 'CLIPGenerator'
    assert cfg.train_cfg.max_epochs == 400 and cfg.find_unused_parameters
    # one step of the ViT-B model; the teacher (a download) as a small random CLIP of its
    # feature size
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model_cfg = cfg.model.copy()
    model_cfg['target_generator'] = dict(type='RandomCLIPGenerator', img_size=224,
                                         patch_size=16, width=64, num_layers=1, out_dims=512)
    model = MODELS.build(model_cfg)
    assert model.grid_hw == (14, 14)
    split = model.split_from_units(plackett_luce_split(torch.ones(1, 196), 88, 78))
    loss = model.famt_loss(torch.randn(1, 3, 224, 224), samples(1), split)['loss']
    loss.backward()
    assert torch.isfinite(loss) and model.backbone.layers[0].attn.qkv.weight.grad.abs().sum() > 0
