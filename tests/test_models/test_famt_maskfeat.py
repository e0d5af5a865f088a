"""FAMTMaskFeat against mmpretrain's own MaskFeat, on a tiny ViT (56 px, 4 px patches: the
14 x 14 patch grid mmpretrain's HOGGenerator lays its features out on)."""
import pytest
import torch
from mmpretrain.registry import MODELS

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.models.famt_algorithm import FAMTSplit
from tests.test_models.algorithm_helpers import samples, uniform_bank

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
IMG, PATCH, POOL, L = 56, 4, 4, 196
HOG_DIM = 3 * 9 * (PATCH // POOL)**2


def maskfeat_cfg(famt=True, mask_ratio=0.45, throw_ratio=0.40, random_mask_ratio=0.4,
                 random_throw_ratio=None, img=IMG, patch=PATCH):
    cfg = dict(
        type='MaskFeat',
        backbone=dict(type='MaskFeatViT', arch=ARCH, img_size=img, patch_size=patch),
        neck=dict(type='LinearNeck', in_channels=32, out_channels=HOG_DIM, norm_cfg=None),
        head=dict(type='MIMHead', loss=dict(type='PixelReconstructionLoss', criterion='L2')),
        target_generator=dict(type='HOGGenerator', nbins=9, pool=POOL, gaussian_window=14))
    if famt:
        cfg.update(type='FAMTMaskFeat', mask_generator=dict(
            type='FAMTMaskGenerator', mask_ratio=mask_ratio, throw_ratio=throw_ratio,
            random_mask_ratio=random_mask_ratio, random_throw_ratio=random_throw_ratio))
        cfg['backbone']['type'] = 'FAMTMaskFeatViT'
    return cfg


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def bank(n, weights=None):
    return uniform_bank(n, (14, 14), weights)


def hog_in_float32(model):
    """mmpretrain's HOGGenerator accumulates into a float32 tensor (it cannot run in float64):
    the gradient-free target runs in float32 on the same images in both models."""
    hog = model.target_generator.float()
    hog.register_forward_pre_hook(lambda m, args: (args[0].float(), ))
    hog.register_forward_hook(lambda m, args, out: out.double())


@pytest.mark.parametrize('famt_phase', [True, False])
def test_uniform_weights_without_throwing_give_plain_maskfeat_loss_and_grads(famt_phase):
    torch.manual_seed(0)
    famt = build(maskfeat_cfg(throw_ratio=0.0)).double()
    plain = build(maskfeat_cfg(famt=False)).double()
    missing, unexpected = plain.load_state_dict(famt.state_dict(), strict=True)
    assert not missing and not unexpected  # the same parameters, names and shapes
    hog_in_float32(famt), hog_in_float32(plain)
    famt.mask_generator.set_bank(bank(3))
    famt.mask_generator.famt_active = famt_phase
    x = torch.randn(3, 3, IMG, IMG, dtype=torch.float64)

    split = famt.famt_split(samples(3), 3, 'cpu', generator=torch.Generator().manual_seed(1))
    assert split.thrown.shape[1] == 0
    assert split.masked.shape[1] == int(L * (0.45 if famt_phase else 0.4))
    ours = famt.famt_loss(x, samples(3), split)['loss']
    plain_samples = samples(3)
    mask = torch.zeros(3, L, dtype=torch.long).scatter_(1, split.masked, 1).view(3, 14, 14)
    for s, m in zip(plain_samples, mask):
        s.set_mask(m)  # what mmpretrain's mask-generator transform packs
    ref = plain.loss(x, plain_samples)['loss']
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
    ours.backward()
    ref.backward()
    grads = dict(plain.named_parameters())
    for name, p in famt.named_parameters():
        if grads[name].grad is None:  # the frozen target: no gradient in either model
            assert p.grad is None, name
            continue
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-9, atol=1e-12, msg=name)
    assert famt.backbone.mask_token.grad.abs().sum() > 0


@pytest.mark.parametrize('famt_phase', [True, False])
def test_thrown_patches_never_reach_the_encoder_nor_the_loss(famt_phase):
    torch.manual_seed(0)
    # 196 patches: 88 masked, 78 thrown, 30 visible (the warm-up throw draws them uniformly
    # before the switch)
    model = build(maskfeat_cfg(random_mask_ratio=0.45, random_throw_ratio=0.40))
    gen = model.mask_generator
    gen.set_bank(bank(2, torch.rand(2, L) + 0.1))
    gen.famt_active = famt_phase
    seen = []
    model.backbone.layers[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1]))
    model.neck.register_forward_pre_hook(lambda m, a: seen.append(a[0][0].shape[0]))
    split = model.famt_split(samples(2), 2, 'cpu', generator=torch.Generator().manual_seed(3))
    M, T, V = (s.shape[1] for s in split[:3])
    assert (M, T, V) == (88, 78, 30)
    every = torch.cat(split[:3], 1).sort(1).values
    assert torch.equal(every, torch.arange(L).expand(2, -1))

    x = torch.randn(2, 3, IMG, IMG, requires_grad=True)
    loss = model.famt_loss(x, samples(2), split)['loss']
    # the encoder sees CLS + masked + visible tokens, the neck and the loss the masked ones
    assert seen == [1 + M + V, 2 * M]
    loss.backward()
    pixel_grad = x.grad.view(2, 3, 14, PATCH, 14, PATCH).abs().sum((1, 3, 5)).flatten(1)
    # the student reads pixels of visible patches only (HOG is a gradient-free target)
    assert (pixel_grad.gather(1, split.visible) > 0).all()
    assert not pixel_grad.gather(1, split.thrown).any()
    assert not pixel_grad.gather(1, split.masked).any()


def test_the_loss_is_the_hog_of_the_masked_patches_only():
    torch.manual_seed(0)
    model = build(maskfeat_cfg())
    x = torch.randn(1, 3, IMG, IMG)
    ids = torch.randperm(L)[None]
    split = FAMTSplit(ids[:, :90], ids[:, 90:170], ids[:, 170:], units=(None, ) * 3)
    loss = model.famt_loss(x, samples(1), split)['loss']
    hog = model.target_generator(x)  # 1 x L x D, whole image
    latent = model.backbone.forward_famt(x, split.masked, split.visible)[:, 1:91]
    pred = model.neck((latent[0], ))[0]
    torch.testing.assert_close(loss, ((pred - hog[0, ids[0, :90]])**2).mean())


def test_a_patch_grid_other_than_hogs_14_x_14_stops_with_the_fix():
    with pytest.raises(ValueError, match='14 x 14 patch grid'):
        MODELS.build(maskfeat_cfg(img=64, patch=4))


def test_in1k_config_is_mmpretrains_recipe_with_famt_and_trains_a_step():
    import os.path as osp

    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from tests.conftest import REPO
    cfg = Config.fromfile(osp.join(REPO, 'configs/famt_maskfeat_vit-b-p16_in1k.py'))
    assert (cfg.model.type, cfg.model.backbone.type) == ('FAMTMaskFeat', 'FAMTMaskFeatViT')
    assert (cfg.model.backbone.arch, cfg.model.backbone.patch_size) == ('b', 16)
    assert cfg.model.target_generator == dict(type='HOGGenerator', nbins=9, pool=8,
                                              gaussian_window=16)
    assert cfg.train_cfg.max_epochs == 300 and cfg.optim_wrapper.type == 'AmpOptimWrapper'
    # the recipe's BEiTMaskGenerator is dropped: FAMT draws the mask
    assert [s.type for s in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'FAMTRandomResizedCrop', 'RandomFlip', 'PackInputs']
    assert [h.type for h in cfg.custom_hooks] == ['FAMTWeightHook']
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    loss = model.loss(torch.randn(1, 3, 224, 224), samples(1))['loss']
    assert loss.isfinite() and model.grid_hw == (14, 14)
