"""FAMTSimMIM against mmpretrain's own SimMIM (with a plain mask-token ViT), on a tiny ViT."""
import os.path as osp

import pytest
import torch
from mmpretrain.registry import MODELS

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.models.famt_simmim import pool_to_units, units_to_patches
from tests.test_models.algorithm_helpers import samples, uniform_bank

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
# 64 px, 8 px patches (8 x 8 grid), 16 px mask units (4 x 4 units of 2 x 2 patches)
IMG, PATCH, UNIT = 64, 8, 16


def simmim_cfg(famt=True, mask_ratio=0.44, throw_ratio=0.26, random_mask_ratio=0.6,
               random_throw_ratio=None, **kw):
    cfg = dict(
        type='SimMIM',
        backbone=dict(type='SimMIMViT', arch=ARCH, img_size=IMG, patch_size=PATCH),
        neck=dict(type='SimMIMLinearDecoder', in_channels=32, encoder_stride=PATCH),
        head=dict(type='SimMIMHead', patch_size=PATCH,
                  loss=dict(type='PixelReconstructionLoss', criterion='L1', channel=3)))
    if famt:
        cfg.update(type='FAMTSimMIM', mask_patch_size=UNIT, mask_generator=dict(
            type='FAMTMaskGenerator', mask_ratio=mask_ratio, throw_ratio=throw_ratio,
            random_mask_ratio=random_mask_ratio, random_throw_ratio=random_throw_ratio))
        cfg['backbone']['type'] = 'FAMTSimMIMViT'
        cfg['neck']['type'] = 'FAMTSimMIMLinearDecoder'
        cfg['head']['type'] = 'FAMTSimMIMHead'
    cfg.update(kw)
    return cfg


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def unit_bank(n, weights=None):
    return uniform_bank(n, (4, 4), weights)


def test_units_to_patches_and_pooling():
    # 2 x 2 units of 2 x 2 patches on a 4 x 4 patch grid
    ids = units_to_patches(torch.tensor([[1, 2]]), unit_grid_w=2, scale=2)
    assert ids.tolist() == [[2, 3, 6, 7, 8, 9, 12, 13]]
    w = torch.arange(16.).view(1, 4, 4)
    assert pool_to_units(w, 2).tolist() == [[[2.5, 4.5], [10.5, 12.5]]]


@pytest.mark.parametrize('famt_phase', [True, False])
def test_uniform_weights_without_throwing_give_plain_simmim_loss(famt_phase):
    torch.manual_seed(0)
    famt = build(simmim_cfg(throw_ratio=0.0)).double()
    plain = build(simmim_cfg(famt=False)).double()
    missing, unexpected = plain.load_state_dict(famt.state_dict(), strict=True)
    assert not missing and not unexpected  # the same parameters, names and shapes
    gen = famt.mask_generator
    gen.set_bank(unit_bank(3))
    gen.famt_active = famt_phase
    x = torch.randn(3, 3, IMG, IMG, dtype=torch.float64)

    torch.manual_seed(1)
    ours = famt.loss(x, samples(3))['loss']
    torch.manual_seed(1)  # the same draw again, for the plain model's mask
    ids_masked, ids_thrown, _ = famt.famt_split(samples(3), 3, 'cpu')[:3]
    n_units = int(16 * (0.44 if famt_phase else 0.6))
    assert ids_thrown.shape[1] == 0 and ids_masked.shape[1] == 4 * n_units
    mask = torch.zeros(3, 64, dtype=torch.long).scatter_(1, ids_masked, 1).view(3, 8, 8)
    # whole 2 x 2 units are masked, as SimMIMMaskGenerator expands its units
    assert torch.equal(mask, mask[:, ::2, ::2].repeat_interleave(2, 1).repeat_interleave(2, 2))
    plain_samples = samples(3)
    for s, m in zip(plain_samples, mask):
        s.set_mask(m)
    ref = plain.loss(x, plain_samples)['loss']
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=0)
    ours.backward()
    ref.backward()
    grads = dict(plain.named_parameters())
    for name, p in famt.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize('famt_phase', [True, False])
def test_thrown_patches_never_reach_the_encoder(famt_phase):
    torch.manual_seed(0)
    # 16 units: 7 masked, int(16 * .70) - 7 = 4 thrown, 5 visible; before the switch the
    # warm-up throw (random_throw_ratio) draws the same counts uniformly
    model = build(simmim_cfg(random_mask_ratio=0.44, random_throw_ratio=0.26))
    gen = model.mask_generator
    gen.set_bank(unit_bank(2, torch.rand(2, 16) + 0.1))
    gen.famt_active = famt_phase
    seen = {}
    model.backbone.layers[0].register_forward_pre_hook(
        lambda m, a: seen.__setitem__('enc', a[0].shape[1]))
    x = torch.randn(2, 3, IMG, IMG)

    def run(inputs):
        torch.manual_seed(3)
        out = {}
        # the encoder's output: its final norm's (FAMT path forward_famt)
        handle = model.backbone.ln1.register_forward_hook(
            lambda m, a, o: out.__setitem__('latent', o))
        loss = model.loss(inputs, samples(2))['loss']
        handle.remove()
        return loss, out['latent']

    loss, latent = run(x)
    assert seen['enc'] == 1 + 4 * (7 + 5)  # CLS + masked + visible patches, no thrown one
    torch.manual_seed(3)
    ids_masked, ids_thrown, ids_visible = model.famt_split(samples(2), 2, 'cpu')[:3]
    assert ids_thrown.shape[1] == 4 * 4
    every = torch.cat([ids_masked, ids_thrown, ids_visible], 1).sort(1).values
    assert torch.equal(every, torch.arange(64).expand(2, -1))

    def repaint(ids):  # new random pixels on patches ids (B x K)
        y = x.clone().view(2, 3, 8, PATCH, 8, PATCH)
        for b in range(2):
            for i in ids[b].tolist():
                y[b, :, i // 8, :, i % 8, :] = torch.randn(3, PATCH, PATCH) * 5
        return y.view_as(x)

    loss_thrown, latent_thrown = run(repaint(ids_thrown))
    assert torch.equal(loss_thrown, loss) and torch.equal(latent_thrown, latent)
    loss_visible, _ = run(repaint(ids_visible[:, :1]))
    assert not torch.equal(loss_visible, loss)  # while visible pixels do count


def test_unit_weights_are_the_mae_patch_weights_pooled():
    torch.manual_seed(0)
    model = build(simmim_cfg())
    mae = MODELS.build(dict(
        type='FAMTMAE',
        backbone=dict(type='FAMTViT', arch=ARCH, img_size=IMG, patch_size=PATCH),
        neck=dict(type='FAMTPretrainDecoder', num_patches=64, patch_size=PATCH, embed_dim=32,
                  decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2),
        head=dict(type='FAMTPretrainHead', patch_size=PATCH,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2'))))
    _, unexpected = mae.backbone.load_state_dict(model.backbone.state_dict(), strict=False)
    assert unexpected == ['mask_token']
    x = torch.randn(2, 3, IMG, IMG)
    weights, fallback = model.compute_famt_weights(x)
    patch_weights, _ = mae.compute_famt_weights(x)
    assert weights.shape == (2, 4, 4) and weights.dtype == torch.float32
    assert model.grid_hw == (4, 4) and model.input_hw == (IMG, IMG) and not fallback.any()
    torch.testing.assert_close(weights, patch_weights.view(2, 4, 2, 4, 2).mean((2, 4)))
    assert model.training  # restored after the eval-mode pass


@pytest.mark.parametrize('kw, match', [
    (dict(mask_patch_size=12), 'mask_patch_size=12'),
    (dict(neck=dict(type='FAMTSimMIMLinearDecoder', in_channels=32, encoder_stride=16)),
     'encoder_stride=8')])
def test_bad_unit_or_decoder_settings_stop_with_the_fix(kw, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(simmim_cfg(**kw))


def shrunk_demo(path, config, **extra):
    """The SimMIM demo config at 32 px (2 x 2 units of 2 x 2 patches), 40 images, batch 8."""
    from mmengine.config import Config
    from tests.conftest import REPO
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    cfg.merge_from_dict({
        'model.backbone.arch': ARCH, 'model.backbone.img_size': 32,
        'model.neck.in_channels': 32,
        'train_dataloader.batch_size': 8, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.num_samples': 40, 'train_dataloader.dataset.img_size': 32,
        'train_dataloader.dataset.pipeline.0.scale': 32,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=True)],
        'default_hooks.logger.interval': 1, **extra})
    cfg.dump(str(path))
    return str(path)


def test_famt_simmim_demo_trains_through_the_switch_and_a_refresh(tmp_path):
    from famt_mm.compat import load_local_checkpoint
    from tests.conftest import run_tool
    cfg = shrunk_demo(tmp_path / 'famt_simmim_tiny.py', 'famt_simmim_vit-t_demo.py', **{
        'train_cfg.max_epochs': 3,
        'custom_hooks': [dict(type='FAMTWeightHook', start_epoch=1, interval=1, batch_size=8,
                              num_workers=0)]})
    work = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work])
    log = proc.stdout + proc.stderr
    assert 'epoch 1 trains with random masking' in log
    assert 'FAMT refresh before epoch 2' in log and 'FAMT refresh before epoch 3' in log
    assert 'epoch 2 trains with FAMT masking and throwing' in log
    ckpt = load_local_checkpoint(osp.join(work, 'epoch_3.pth'))
    # the bank is on the 2 x 2 UNIT grid of the 32 px images, refreshed before epoch 2
    assert ckpt['famt']['bank'].shape == (40, 2, 2) and ckpt['famt']['bank_epoch'] == 2
    assert ckpt['famt']['grid_hw'] == (2, 2)


def test_plain_simmim_demo_config_takes_a_training_step():
    """The baseline config's own dataset, pipeline (SimMIMMaskGenerator) and model, one step."""
    from mmengine.config import Config
    from mmengine.dataset import default_collate
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS
    from tests.conftest import REPO
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'simmim_vit-t_demo.py'))
    cfg.train_dataloader.dataset.num_samples = 4
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        model = build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    data = model.data_preprocessor(default_collate([dataset[i] for i in range(4)]), True)
    assert data['data_samples'][0].mask.shape == (8, 8)  # 4 x 4 units of 2 x 2 patches
    assert int(data['data_samples'][0].mask.sum()) == 4 * 10  # ceil(16 * 0.6) units
    loss = model.loss(data['inputs'], data['data_samples'])['loss']
    loss.backward()
    assert torch.isfinite(loss) and model.backbone.mask_token.grad.abs().sum() > 0
