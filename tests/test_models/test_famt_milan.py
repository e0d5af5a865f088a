"""FAMTMILAN against mmpretrain's own MILAN, on a tiny ViT (32 px, 8 px patches: 16 patches)
with a tiny randomly initialised CLIP teacher (the pretrained one cannot be downloaded)."""
import pytest
import torch
from mmpretrain.registry import MODELS

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.models.famt_algorithm import FAMTSplit
from tests.test_models.algorithm_helpers import samples, uniform_bank

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
IMG, PATCH, L, FEAT = 32, 8, 16, 16


def milan_cfg(famt=True, mask_ratio=0.75, throw_ratio=0.0, random_mask_ratio=0.75,
              random_throw_ratio=None):
    cfg = dict(
        type='MILAN',
        backbone=dict(type='MILANViT', arch=ARCH, img_size=IMG, patch_size=PATCH,
                      mask_ratio=0.75),
        neck=dict(type='MILANPretrainDecoder', num_patches=L, patch_size=PATCH, embed_dim=32,
                  decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2,
                  predict_feature_dim=FEAT),
        head=dict(type='MIMHead', loss=dict(type='CosineSimilarityLoss', shift_factor=2.0,
                                            scale_factor=2.0)),
        target_generator=dict(type='RandomCLIPGenerator', img_size=IMG, patch_size=PATCH,
                              width=64, num_layers=1, out_dims=FEAT))
    if famt:
        cfg.update(type='FAMTMILAN', mask_generator=dict(
            type='FAMTMaskGenerator', mask_ratio=mask_ratio, throw_ratio=throw_ratio,
            random_mask_ratio=random_mask_ratio, random_throw_ratio=random_throw_ratio))
        cfg['backbone']['type'] = 'FAMTMILANViT'
        cfg['neck']['type'] = 'FAMTMILANPretrainDecoder'
    return cfg


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def bank(n, weights=None):
    return uniform_bank(n, (4, 4), weights)


def clip_in_float32(model):
    """mmpretrain's CLIP casts to float32 in its LayerNorms (it cannot run in float64): the
    gradient-free teacher runs in float32 on the same images in both models."""
    clip = model.target_generator.float()
    clip.register_forward_pre_hook(lambda m, args: (args[0].float(), ))
    clip.register_forward_hook(lambda m, args, out: tuple(o.double() for o in out))


def twins():
    torch.manual_seed(0)
    famt = build(milan_cfg()).double()
    plain = build(milan_cfg(famt=False)).double()
    missing, unexpected = plain.load_state_dict(famt.state_dict(), strict=True)
    assert not missing and not unexpected  # the same parameters (teacher included)
    clip_in_float32(famt), clip_in_float32(plain)
    return famt, plain


def assert_same_loss_and_grads(famt, plain, ours, ref):
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
    ours.backward()
    ref.backward()
    grads = dict(plain.named_parameters())
    for name, p in famt.named_parameters():
        if grads[name].grad is None:  # the frozen teacher, the unused mask token of MAEViT
            assert p.grad is None, name
            continue
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-9, atol=1e-12, msg=name)
    assert famt.neck.mask_token.grad.abs().sum() > 0


def test_milans_own_draw_gives_milans_loss_and_grads():
    """mmpretrain's MILAN.loss as it is (CLIP importance, its multinomial draw); its kept /
    dumped ids, read from its backbone's output, are FAMT's visible / masked sets."""
    famt, plain = twins()
    x = torch.randn(3, 3, IMG, IMG, dtype=torch.float64)
    drawn = {}
    plain.backbone.register_forward_hook(lambda m, a, out: drawn.update(keep=out[2],
                                                                        dump=out[3]))
    torch.manual_seed(1)
    ref = plain.loss(x, samples(3))['loss']
    assert drawn['keep'].shape == (3, 4) and drawn['dump'].shape == (3, 12)
    split = FAMTSplit(drawn['dump'], drawn['keep'][:, :0], drawn['keep'], units=(None, ) * 3)
    ours = famt.famt_loss(x, samples(3), split)['loss']
    assert_same_loss_and_grads(famt, plain, ours, ref)


@pytest.mark.parametrize('famt_phase', [True, False])
def test_uniform_weights_without_throwing_give_plain_milan_loss_and_grads(famt_phase):
    """FAMT's own split (uniform bank / random phase, nothing thrown) fed to MILAN's backbone
    (an importance that keeps exactly FAMT's visible patches: the rest weigh 1e-300, which
    its multinomial draw never takes while a visible one is left), neck and head."""
    famt, plain = twins()
    famt.mask_generator.set_bank(bank(3))
    famt.mask_generator.famt_active = famt_phase
    x = torch.randn(3, 3, IMG, IMG, dtype=torch.float64)
    split = famt.famt_split(samples(3), 3, 'cpu', generator=torch.Generator().manual_seed(1))
    assert split.thrown.shape[1] == 0 and split.visible.shape[1] == 4
    ours = famt.famt_loss(x, samples(3), split)['loss']

    importance = torch.full((3, L), 1e-300, dtype=torch.float64).scatter_(1, split.visible, 1.)
    clip_feature, _ = plain.target_generator(x)
    latent, ids_restore, ids_keep, ids_dump = plain.backbone(x, importance)
    assert torch.equal(ids_keep.sort(1).values, split.visible.sort(1).values)
    pred = plain.neck(latent, ids_restore, ids_keep, ids_dump)
    ref = plain.head.loss(pred, clip_feature)
    assert_same_loss_and_grads(famt, plain, ours, ref)


@pytest.mark.parametrize('famt_phase', [True, False])
def test_thrown_patches_never_reach_the_encoder_decoder_or_loss(famt_phase):
    torch.manual_seed(0)
    # 16 patches: 7 masked, 6 thrown, 3 visible (the warm-up throw draws them uniformly)
    model = build(milan_cfg(mask_ratio=0.45, throw_ratio=0.40, random_mask_ratio=0.45,
                            random_throw_ratio=0.40))
    gen = model.mask_generator
    gen.set_bank(bank(2, torch.rand(2, L) + 0.1))
    gen.famt_active = famt_phase
    seen = []
    model.backbone.layers[0].register_forward_pre_hook(
        lambda m, a: seen.append(('encoder', a[0].shape[1])))
    for blk in model.neck.decoder_blocks:  # queries; prompts; keys (ids of their order)
        blk.register_forward_pre_hook(lambda m, a: seen.append(
            ('decoder', a[0].shape[1], a[1].shape[1], a[2].shape[1])))
    model.head.loss_module.register_forward_pre_hook(
        lambda m, a: seen.append(('loss', *a[1].shape[:2])))
    split = model.famt_split(samples(2), 2, 'cpu', generator=torch.Generator().manual_seed(3))
    M, T, V = (s.shape[1] for s in split[:3])
    assert (M, T, V) == (7, 6, 3)
    assert torch.equal(torch.cat(split[:3], 1).sort(1).values, torch.arange(L).expand(2, -1))

    x = torch.randn(2, 3, IMG, IMG, requires_grad=True)
    loss = model.famt_loss(x, samples(2), split)['loss']
    assert seen == [('encoder', 1 + V), ('decoder', M, 1 + V, V + M),
                    ('decoder', M, 1 + V, V + M), ('loss', 2, 1 + V + M)]
    loss.backward()
    pixel_grad = x.grad.view(2, 3, 4, PATCH, 4, PATCH).abs().sum((1, 3, 5)).flatten(1)
    # the student reads the pixels of visible patches only (CLIP is a gradient-free target)
    assert (pixel_grad.gather(1, split.visible) > 0).all()
    assert not pixel_grad.gather(1, torch.cat([split.thrown, split.masked], 1)).any()


def test_the_loss_covers_cls_visible_and_masked_tokens_only():
    torch.manual_seed(0)
    model = build(milan_cfg())
    x = torch.randn(1, 3, IMG, IMG)
    ids = torch.randperm(L)[None]
    split = FAMTSplit(ids[:, :7], ids[:, 7:13], ids[:, 13:], units=(None, ) * 3)
    loss = model.famt_loss(x, samples(1), split)['loss']
    clip_feature, _ = model.target_generator(x)
    latent = model.backbone.forward_famt(x, split.visible)
    pred = model.neck.forward_famt(latent, split.visible, split.masked)
    target = clip_feature[0, torch.cat([torch.zeros(1, dtype=torch.long), ids[0, 13:] + 1,
                                        ids[0, :7] + 1])]
    cos = torch.nn.functional.cosine_similarity(pred[0], target, dim=-1)
    torch.testing.assert_close(loss, (2 - 2 * cos).mean())


def test_random_clip_teacher_is_a_clip_generator_of_the_asked_size():
    clip = MODELS.build(dict(type='RandomCLIPGenerator', img_size=IMG, patch_size=PATCH,
                             width=64, num_layers=2, out_dims=FEAT))
    feature, attention = clip(torch.randn(2, 3, IMG, IMG))
    assert feature.shape == (2, 1 + L, FEAT) and attention.shape == (2, 1 + L, 1 + L)
    with pytest.raises(ValueError, match='multiple of 64'):
        MODELS.build(dict(type='RandomCLIPGenerator', width=48))


def test_in1k_config_is_mmpretrains_recipe_with_famt_and_trains_a_step():
    import os.path as osp

    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from tests.conftest import REPO
    cfg = Config.fromfile(osp.join(REPO, 'configs/famt_milan_vit-b-p16_in1k.py'))
    model_cfg = cfg.model
    assert (model_cfg.type, model_cfg.backbone.type, model_cfg.neck.type) == (
        'FAMTMILAN', 'FAMTMILANViT', 'FAMTMILANPretrainDecoder')
    assert (model_cfg.backbone.arch, model_cfg.backbone.patch_size) == ('b', 16)
    # the pretrained CLIP teacher, as mmpretrain's recipe
    assert model_cfg.target_generator.type == 'CLIPGenerator'
    assert model_cfg.target_generator.tokenizer_path.endswith('clip_vit_base_16.pth.tar')
    assert cfg.train_cfg.max_epochs == 400
    assert [s.type for s in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'FAMTRandomResizedCrop', 'RandomFlip', 'PackInputs']
    assert [h.type for h in cfg.custom_hooks] == ['FAMTWeightHook']
    # one step with a random teacher of the pretrained one's output size (no download here)
    model_cfg.target_generator = dict(type='RandomCLIPGenerator', img_size=224, patch_size=16,
                                      width=64, num_layers=1, out_dims=512)
    init_default_scope('mmpretrain')
    model = MODELS.build(model_cfg)
    loss = model.loss(torch.randn(1, 3, 224, 224), samples(1))['loss']
    assert loss.isfinite() and model.grid_hw == (14, 14)
