"""FAMTCAE against mmpretrain's own CAE on a tiny BEiT-style ViT and a tiny random DALL-E
tokenizer (its real weights cannot be downloaded here)."""
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.bank import WeightBank
from famt_mm.models import famt_weights
from famt_mm.models.famt_cae import ids_to_mask

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
IMG, PATCH, GRID = 32, 8, 4  # 4 x 4 = 16 patches; the tokenizer view is 32 px too (8 px/token)
L = GRID * GRID
VOCAB = 16


def cae_cfg(famt=True, n_masked=8, base_momentum=0.5, **generator):
    cfg = dict(
        type='CAE',
        backbone=dict(type='CAEPretrainViT', arch=ARCH, img_size=IMG, patch_size=PATCH,
                      layer_scale_init_value=0.1, bias='qv_bias'),
        neck=dict(type='CAENeck', num_classes=VOCAB, embed_dims=32, num_heads=2,
                  regressor_depth=2, decoder_depth=1, mlp_ratio=2,
                  layer_scale_init_value=0.1, mask_tokens_num=n_masked),
        head=dict(type='CAEHead', loss=dict(type='CAELoss', lambd=2)),
        target_generator=dict(type='DALL-E', n_hid=4, n_blk_per_group=1, vocab_size=VOCAB),
        base_momentum=base_momentum)
    if famt:
        cfg['type'] = 'FAMTCAE'
        cfg['backbone']['type'] = 'FAMTCAEViT'
        cfg['neck']['type'] = 'FAMTCAENeck'
        cfg['mask_generator'] = dict(type='FAMTMaskGenerator', **generator)
    return cfg


def build(cfg):
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def samples(n, masks=None):
    out = []
    for i in range(n):
        sample = DataSample(metainfo=dict(sample_idx=i, famt_crop=(0.0, 0.0, 1.0, 1.0),
                                          flip=False))
        if masks is not None:  # what BEiTMaskGenerator + PackInputs give CAE: h x w
            sample.set_field(masks[i].view(GRID, GRID), 'mask', field_type='data')
        out.append(sample)
    return out


def double(model):
    model.double()
    model.target_generator.float()  # DALL-E casts its input to float32 and needs its weights so
    return model


def views(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, IMG, IMG, generator=g, dtype=torch.float64),
            torch.randn(n, 3, IMG, IMG, generator=g)]


def grads(model):
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def test_same_mask_same_losses_gradients_and_teacher_as_mmpretrain_cae():
    torch.manual_seed(0)
    famt = double(build(cae_cfg(random_mask_ratio=0.5)))  # random phase: nothing thrown
    plain = double(MODELS.build(cae_cfg(famt=False)))
    plain.load_state_dict(famt.state_dict(), strict=True)
    x = views(3)
    split = famt.famt_split(samples(3), 3, 'cpu', generator=torch.Generator().manual_seed(1))
    assert split.thrown.shape[1] == 0 and split.masked.shape[1] == 8
    ours = famt.famt_loss(x, samples(3), split)
    ref = plain.loss(x, samples(3, ids_to_mask(split.masked, L)))
    assert set(ours) == set(ref) == {'loss', 'main', 'align'}
    for key in ref:
        assert ref[key].dtype == torch.float64
        torch.testing.assert_close(ours[key], ref[key], rtol=1e-12, atol=1e-12)
    ours['loss'].backward()
    ref['loss'].backward()
    g_ours, g_ref = grads(famt), grads(plain)
    assert set(g_ours) == set(g_ref) and len(g_ref) > 40
    assert not any(k.startswith(('teacher.', 'target_generator.')) for k in g_ref)
    for key in g_ref:
        torch.testing.assert_close(g_ours[key], g_ref[key], rtol=1e-10, atol=1e-12, msg=key)
    # the EMA teacher was updated once in each (momentum 0.5), to the same values
    plain_teacher = dict(plain.teacher.named_parameters())
    for key, p in famt.teacher.named_parameters():
        torch.testing.assert_close(p, plain_teacher[key], rtol=0, atol=0)


def test_teacher_moves_once_per_step_and_is_not_trained():
    torch.manual_seed(0)
    model = build(cae_cfg(random_mask_ratio=0.5, base_momentum=0.75))
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)  # student now differs from the teacher (init copies it)
    before = [p.clone() for p in model.teacher.parameters()]
    x = [v.float() for v in views(2)]
    model.loss(x, samples(2))['loss'].backward()
    for old, new, student in zip(before, model.teacher.parameters(), model.backbone.parameters()):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * student.detach())
        assert not new.requires_grad and new.grad is None


def famt_active(model, n):
    gen = model.mask_generator
    maps = torch.rand(n, L) + 0.1
    gen.set_bank(WeightBank.from_maps(
        famt_weights.quantize_weights(maps, 'float16').view(n, GRID, GRID)))
    gen.famt_active = True
    return model


def count_tokens(model):
    """Token counts the encoder, the teacher, the regressor, the decoder and the loss see."""
    seen = {}

    def record(name, index=0):
        return lambda module, args: seen.__setitem__(name, args[index].shape[-2])

    model.backbone.layers[0].register_forward_pre_hook(record('encoder'))
    model.teacher.layers[0].register_forward_pre_hook(record('teacher'))
    model.neck.regressors[0].register_forward_pre_hook(record('queries'))
    model.neck.regressors[0].register_forward_pre_hook(record('keys', 1))
    model.neck.decoders[0].register_forward_pre_hook(record('decoder'))
    model.head.loss_module.register_forward_pre_hook(
        lambda module, args: seen.update(loss_logits=args[0].shape[0],
                                         loss_targets=args[1].shape[0],
                                         align=args[3].shape[1]))
    return seen


def test_thrown_patches_reach_neither_encoder_teacher_regressor_nor_loss():
    torch.manual_seed(0)
    model = famt_active(build(cae_cfg(mask_ratio=0.45, throw_ratio=0.40)), 2)
    seen = count_tokens(model)
    n_mask, n_throw = 7, 6  # int(16 * .45), int(16 * .85) - 7; 3 visible
    split = model.famt_split(samples(2), 2, 'cpu', generator=torch.Generator().manual_seed(3))
    assert (split.masked.shape[1], split.thrown.shape[1]) == (n_mask, n_throw)
    x = [v.float() for v in views(2)]
    loss = model.famt_loss(x, samples(2), split)['loss']
    assert seen == dict(encoder=1 + L - n_mask - n_throw, teacher=1 + n_mask, queries=n_mask,
                        keys=L - n_throw, decoder=n_mask, loss_logits=2 * n_mask,
                        loss_targets=2 * n_mask, align=n_mask)
    loss.backward()
    ref = grads(model)
    model.zero_grad(set_to_none=True)
    # new pixels in every thrown patch of the encoder's view: nothing changes
    p = PATCH
    perturbed = x[0].clone()
    for b in range(2):
        for i in split.thrown[b].tolist():
            r, c = divmod(i, GRID)
            perturbed[b, :, r * p:(r + 1) * p, c * p:(c + 1) * p] = 1e3 * torch.randn(3, p, p)
    again = model.famt_loss([perturbed, x[1]], samples(2), split)['loss']
    again.backward()
    assert again.item() == loss.item()
    for key, g in grads(model).items():
        assert torch.equal(g, ref[key]), key
    # ...and the masked patches' pixels do matter (the teacher's alignment targets)
    perturbed[0, :, :p, :p] += 1.0
    for b in range(2):
        r, c = divmod(split.masked[b, 0].item(), GRID)
        perturbed[b, :, r * p:(r + 1) * p, c * p:(c + 1) * p] += 1.0
    assert model.famt_loss([perturbed, x[1]], samples(2), split)['loss'].item() != loss.item()


def test_famt_phase_trains_through_the_runner_forward():
    model = famt_active(build(cae_cfg(mask_ratio=0.45, throw_ratio=0.40)), 2)
    model.mask_generator.hook_attached = True  # as FAMTWeightHook.before_train marks it
    x = [v.float() for v in views(2)]
    losses = model(x, samples(2), mode='loss')
    assert set(losses) == {'loss', 'main', 'align'} and torch.isfinite(losses['loss'])


def test_weights_from_the_encoder_and_no_pictures():
    model = build(cae_cfg(mask_ratio=0.45, throw_ratio=0.40))
    weights, fallback = model.compute_famt_weights(torch.randn(2, 3, IMG, IMG))
    assert weights.shape == (2, GRID, GRID) and (weights > 0).all() and not fallback.any()
    assert model.famt_reconstruct(None, None) is None
    assert model.pretrain_only_keys == ()


def test_tokenizer_grid_must_be_the_patch_grid():
    model = build(cae_cfg(random_mask_ratio=0.5))
    x = [torch.randn(1, 3, IMG, IMG), torch.randn(1, 3, IMG // 2, IMG // 2)]
    with pytest.raises(ValueError, match='second_size to 32'):
        model.loss(x, samples(1))


def test_encoder_converts_to_a_plain_vit_computing_the_same_features(tmp_path):
    """famt2target folds CAE's BEiT-style blocks (q / v biases, layer scales) into plain ViT
    blocks; the teacher (same keys under ``teacher.``) is not what converts."""
    from famt_mm.transfer.convert import convert_checkpoint
    torch.manual_seed(0)
    model = build(cae_cfg()).double()  # the fold's products in float64: equal to 1e-10
    with torch.no_grad():
        for p in model.backbone.parameters():  # biases and layer scales away from their init
            p.add_(0.05 * torch.randn_like(p))
        for p in model.teacher.parameters():
            p.fill_(float('nan'))  # a teacher weight in the result would show
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'cae.pth')
    info = convert_checkpoint(str(tmp_path / 'cae.pth'), str(tmp_path / 'vit.pth'), 'mmpretrain')
    assert (info['embed_dims'], info['num_layers'], info['patch_size']) == (32, 2, PATCH)
    vit = MODELS.build(dict(type='VisionTransformer', arch=ARCH, img_size=IMG, patch_size=PATCH,
                            out_type='raw', final_norm=True))
    state = torch.load(tmp_path / 'vit.pth', weights_only=True)['state_dict']
    vit.double().load_state_dict(state, strict=True)
    model.eval(), vit.eval()
    x = torch.randn(2, 3, IMG, IMG, dtype=torch.float64)
    torch.testing.assert_close(vit(x)[0], model.backbone(x, None)[0], rtol=1e-10, atol=1e-10)


def test_two_view_preprocessor_also_takes_the_refresh_one_view_batches():
    args = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                second_mean=[-31.875] * 3, second_std=[318.75] * 3, to_rgb=True)
    ours = MODELS.build(dict(type='FAMTTwoNormDataPreprocessor', **args))
    plain = MODELS.build(dict(type='TwoNormDataPreprocessor', **args))
    pair = [torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8) for _ in range(2)]
    got = ours(dict(inputs=pair, data_samples=None))['inputs']
    ref = plain(dict(inputs=pair, data_samples=None))['inputs']
    assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, ref))
    one = ours(dict(inputs=pair[0], data_samples=None))['inputs']  # the refresh's batch
    assert torch.equal(one, ref[0])
    listed = ours(dict(inputs=list(pair[0]), data_samples=None))['inputs']
    assert torch.equal(listed, ref[0])


def test_imagenet_config_is_mmpretrains_recipe_with_famt():
    from mmengine.config import Config
    from tests.conftest import REPO
    cfg = Config.fromfile(f'{REPO}/configs/famt_cae_beit-base-p16_in1k.py')
    model = cfg.model
    assert (model.type, model.backbone.type, model.neck.type, model.head.type) == (
        'FAMTCAE', 'FAMTCAEViT', 'FAMTCAENeck', 'CAEHead')
    assert (model.backbone.arch, model.backbone.layer_scale_init_value) == ('b', 0.1)
    assert (model.neck.regressor_depth, model.neck.decoder_depth) == (4, 4)
    assert model.target_generator.init_cfg.checkpoint.endswith('dalle_encoder.pth')  # the real one
    assert (cfg.train_cfg.max_epochs, cfg.optim_wrapper.type) == (300, 'AmpOptimWrapper')
    gen = model.mask_generator
    assert (gen.mask_ratio, gen.throw_ratio, int(196 * gen.random_mask_ratio)) == (0.45, 0.4, 75)
    pre = cfg.data_preprocessor
    assert pre.type == 'FAMTTwoNormDataPreprocessor' and pre.second_std == [318.75] * 3
    steps = [s.type for s in cfg.train_dataloader.dataset.pipeline]
    assert steps == ['LoadImageFromFile', 'RandomFlip',
                     'FAMTRandomResizedCropAndInterpolationWithTwoPic', 'PackInputs']
    assert [h.type for h in cfg.custom_hooks] == ['FAMTWeightHook']
    # the recipe's model with a tiny encoder, regressor, decoder and tokenizer: one FAMT step
    model.backbone.update(arch=ARCH, img_size=IMG, patch_size=PATCH)
    model.neck.update(embed_dims=32, num_heads=2, num_classes=VOCAB)
    model.target_generator = dict(type='DALL-E', n_hid=4, n_blk_per_group=1, vocab_size=VOCAB)
    net = famt_active(build(dict(model, data_preprocessor=pre)), 2)
    data = net.data_preprocessor(dict(inputs=[torch.randint(0, 256, (2, 3, IMG, IMG))] * 2,
                                      data_samples=samples(2)), True)
    losses = net.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['loss']) and set(losses) == {'loss', 'main', 'align'}
