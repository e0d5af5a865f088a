"""FAMTBEiT (v1 and v2) against mmpretrain's own BEiT, on a tiny BEiT ViT with a tiny
tokenizer of random weights (DALL-E for v1, VQ-KD for v2)."""
import pytest
import torch
from mmpretrain.registry import MODELS

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.models.famt_beit import kept_position_bias
from tests.test_models.algorithm_helpers import samples, uniform_bank

# 32 px, 8 px patches: a 4 x 4 patch grid; the second view 32 px (DALL-E: 8 px per token)
IMG, PATCH, GRID, VOCAB = 32, 8, 4, 24
L = GRID * GRID
ARCH = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)


def beit_cfg(version, famt=True, mask_ratio=0.44, throw_ratio=0.25, random_mask_ratio=0.5,
             random_throw_ratio=None, **backbone):
    """A tiny BEiT v1 (shared bias, DALL-E) or v2 (neck on layer 2's output, VQ-KD)."""
    cfg = dict(type='BEiT', backbone=dict(
        type='BEiTPretrainViT', arch=ARCH, img_size=IMG, patch_size=PATCH, out_type='raw',
        layer_scale_init_value=0.1, **backbone))
    if version == 1:
        cfg['backbone'].update(final_norm=True)
        cfg.update(head=dict(type='BEiTV1Head', embed_dims=32, num_embed=VOCAB,
                             loss=dict(type='CrossEntropyLoss')),
                   target_generator=dict(type='DALL-E', n_hid=8, n_blk_per_group=1,
                                         vocab_size=VOCAB))
    else:
        cfg['backbone'].update(final_norm=False, out_indices=[-2, -1])
        cfg.update(
            neck=dict(type='BEiTV2Neck', num_layers=1, early_layers=2,
                      backbone_arch=dict(ARCH, depth=3)),
            head=dict(type='BEiTV2Head', embed_dims=32, num_embed=VOCAB,
                      loss=dict(type='CrossEntropyLoss')),
            target_generator=dict(
                type='VQKD', num_embed=VOCAB, embed_dims=8, quantize_kmeans_init=False,
                encoder_config=dict(
                    arch=dict(embed_dims=16, num_layers=1, num_heads=2,
                              feedforward_channels=32),
                    img_size=IMG, patch_size=PATCH, final_norm=True, out_type='featmap',
                    use_abs_pos_emb=True, use_rel_pos_bias=False, layer_scale_init_value=0.)))
    if famt:
        cfg.update(type='FAMTBEiT', mask_generator=dict(
            type='FAMTMaskGenerator', mask_ratio=mask_ratio, throw_ratio=throw_ratio,
            random_mask_ratio=random_mask_ratio, random_throw_ratio=random_throw_ratio))
        cfg['backbone']['type'] = 'FAMTBEiTPretrainViT'
    return cfg


def build(cfg, dtype=torch.float32):
    model = MODELS.build(cfg)
    model.init_weights()
    model.to(dtype)
    model.target_generator.float()  # DALL-E computes in float32 whatever it is given
    if cfg['target_generator']['type'] == 'VQKD':
        model.target_generator.to(dtype)
    return model


def bank(n, weights=None):
    return uniform_bank(n, (GRID, GRID), weights)


def views(n, dtype=torch.float32):
    return [torch.randn(n, 3, IMG, IMG, dtype=dtype), torch.randn(n, 3, IMG, IMG, dtype=dtype)]


def test_kept_position_bias_is_the_bias_of_each_tokens_own_patch():
    rel = MODELS.build(dict(type='BEiTPretrainViT', arch=ARCH, img_size=IMG,
                            patch_size=PATCH)).rel_pos_bias
    torch.nn.init.normal_(rel.relative_position_bias_table)
    whole = rel()  # H x (1 + L) x (1 + L), mmpretrain's
    identity = torch.arange(L).expand(3, -1)
    assert torch.equal(kept_position_bias(whole, identity), whole.expand(3, -1, -1, -1))
    kept = torch.stack([torch.randperm(L)[:9] for _ in range(3)])  # 7 patches left out
    got = kept_position_bias(whole, kept)
    assert got.shape == (3, 2, 10, 10)
    own = torch.cat([torch.zeros(3, 1, dtype=torch.long), kept + 1], 1)
    for b in range(3):
        for i in range(10):
            for j in range(10):
                assert torch.equal(got[b, :, i, j], whole[:, own[b, i], own[b, j]])


VARIANTS = [(1, dict()),  # the v1 recipe: shared relative position bias
            (1, dict(use_shared_rel_pos_bias=False, use_rel_pos_bias=True,
                     use_abs_pos_emb=True)),  # each layer its own bias, absolute embeddings
            (2, dict())]  # the v2 recipe: shared bias, into the neck's layer too


@pytest.mark.parametrize('version, backbone', VARIANTS)
@pytest.mark.parametrize('famt_phase', [True, False])
def test_uniform_weights_without_throwing_give_plain_beit_loss_and_gradients(
        version, backbone, famt_phase):
    torch.manual_seed(0)
    famt = build(beit_cfg(version, throw_ratio=0.0, **backbone), torch.float64)
    plain = build(beit_cfg(version, famt=False, **backbone), torch.float64)
    missing, unexpected = plain.load_state_dict(famt.state_dict(), strict=True)
    assert not missing and not unexpected  # the same parameters, names and shapes
    for name, p in famt.named_parameters():  # mmpretrain's weights are random but not zero
        if name.endswith(('relative_position_bias_table', 'pos_embed')):
            torch.nn.init.normal_(p, std=0.5)
    plain.load_state_dict(famt.state_dict())
    gen = famt.mask_generator
    gen.set_bank(bank(3))
    gen.famt_active = famt_phase
    x = views(3, torch.float64)

    torch.manual_seed(1)
    ours = famt.loss(x, samples(3))
    torch.manual_seed(1)  # the same draw again, for the plain model's mask
    split = famt.famt_split(samples(3), 3, 'cpu')
    assert split.thrown.shape[1] == 0
    assert split.masked.shape[1] == int(L * (0.44 if famt_phase else 0.5))
    plain_samples = samples(3)
    mask = torch.zeros(3, L, dtype=torch.long).scatter_(1, split.masked, 1).view(3, GRID, GRID)
    for s, m in zip(plain_samples, mask):
        s.set_mask(m)  # as BEiTMaskGenerator would pack it
    ref = plain.loss(x, plain_samples)
    assert sorted(ours) == sorted(ref) == (['loss'] if version == 1 else ['loss_1', 'loss_2'])
    for key in ref:
        torch.testing.assert_close(ours[key], ref[key], rtol=1e-12, atol=0)
    sum(ours.values()).backward()
    sum(ref.values()).backward()
    grads = dict(plain.named_parameters())
    checked = 0
    for name, p in famt.named_parameters():
        if p.grad is None:
            assert grads[name].grad is None, name
            continue
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-9, atol=1e-12, msg=name)
        checked += 1
    assert checked > 40 and famt.backbone.mask_token.grad.abs().sum() > 0


@pytest.mark.parametrize('version, backbone', VARIANTS)
@pytest.mark.parametrize('famt_phase', [True, False])
def test_thrown_patches_never_enter_the_encoder_and_carry_no_loss(version, backbone,
                                                                   famt_phase):
    torch.manual_seed(0)
    # 16 patches: 7 masked, int(16 * .69) - 7 = 4 thrown, 5 visible; before the switch the
    # warm-up throw draws the same counts uniformly
    model = build(beit_cfg(version, mask_ratio=0.44, throw_ratio=0.25, random_mask_ratio=0.44,
                           random_throw_ratio=0.25, **backbone))
    gen = model.mask_generator
    gen.set_bank(bank(2, torch.rand(2, L) + 0.1))
    gen.famt_active = famt_phase
    seen = {}
    layers = list(model.backbone.layers) + list(getattr(model.neck, 'patch_aggregation', []))
    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(
            lambda m, a, k, i=i: seen.__setitem__(i, a[0].shape[1]), with_kwargs=True)
    model.head.cls_head.register_forward_pre_hook(
        lambda m, a: seen.setdefault('head', []).append(a[0].shape[0]))
    x = views(2)

    def run(inputs):
        seen.pop('head', None)
        model.zero_grad()
        torch.manual_seed(3)
        loss = sum(model.loss(inputs, samples(2)).values())
        loss.backward()
        return loss, {n: p.grad.clone() for n, p in model.named_parameters()
                      if p.grad is not None}

    loss, grads = run(x)
    assert [seen[i] for i in range(len(layers))] == [1 + 7 + 5] * len(layers)
    # the loss is over the 7 masked patches of each image only (v2: both outputs)
    assert seen['head'] == [2 * 7] * (1 if version == 1 else 2)
    torch.manual_seed(3)
    split = model.famt_split(samples(2), 2, 'cpu')
    assert split.masked.shape[1] == 7 and split.thrown.shape[1] == 4
    every = torch.cat([split.masked, split.thrown, split.visible], 1).sort(1).values
    assert torch.equal(every, torch.arange(L).expand(2, -1))

    def repaint(ids):  # new random pixels of the encoder's view on patches ids (B x K)
        y = x[0].clone().view(2, 3, GRID, PATCH, GRID, PATCH)
        for b in range(2):
            for i in ids[b].tolist():
                y[b, :, i // GRID, :, i % GRID, :] = torch.randn(3, PATCH, PATCH) * 5
        return [y.view_as(x[0]), x[1]]

    loss_thrown, grads_thrown = run(repaint(split.thrown))
    assert torch.equal(loss_thrown, loss)
    assert grads_thrown.keys() == grads.keys()
    for name in grads:
        assert torch.equal(grads_thrown[name], grads[name]), name
    loss_visible, _ = run(repaint(split.visible[:, :1]))
    assert not torch.equal(loss_visible, loss)  # while visible pixels do count
    # a layer's own table is withheld for its call only: back in place, still a parameter
    for layer in model.backbone.layers:
        table = layer.attn.relative_position_bias_table
        assert isinstance(table, torch.nn.Parameter) == backbone.get('use_rel_pos_bias', False)


def test_weights_come_from_the_encoders_whole_image_attention():
    torch.manual_seed(0)
    model = build(beit_cfg(1))
    x = torch.randn(2, 3, IMG, IMG)
    weights, fallback = model.compute_famt_weights(x)
    assert weights.shape == (2, GRID, GRID) and weights.dtype == torch.float32
    assert (weights > 0).all() and not fallback.any() and model.training
    assert model.grid_hw == model.patch_grid_hw == (GRID, GRID) and model.input_hw == (IMG, IMG)
    assert model.famt_reconstruct(views(2), None) is None  # the targets are tokens


def test_a_second_view_off_the_patch_grid_stops_with_the_fix():
    model = build(beit_cfg(1))
    model.mask_generator.famt_active = False
    x = views(2)
    with pytest.raises(ValueError, match='second view size'):
        model.loss([x[0], torch.randn(2, 3, 2 * IMG, 2 * IMG)], samples(2))


def test_mmpretrains_two_view_preprocessor_is_refused_when_built():
    # it would split the refresh's one-view batch into two "views", image by image
    second = dict(second_mean=[-31.875] * 3, second_std=[318.75] * 3)
    cfg = dict(beit_cfg(1), data_preprocessor=dict(type='TwoNormDataPreprocessor', **second))
    with pytest.raises(ValueError, match=r"FAMTBEiT: data_preprocessor is mmpretrain's "
                                         r"TwoNormDataPreprocessor.*FAMTTwoNormDataPreprocessor"):
        MODELS.build(cfg)
    cfg['data_preprocessor']['type'] = 'FAMTTwoNormDataPreprocessor'
    assert type(MODELS.build(cfg).data_preprocessor).__name__ == 'FAMTTwoNormDataPreprocessor'


@pytest.mark.parametrize('config, tokenizer, second_size', [
    ('famt_beit_vit-b-p16_in1k.py', 'DALL-E', 112), ('famt_beitv2_vit-b-p16_in1k.py', 'VQKD', 224)])
def test_in1k_configs_inherit_mmpretrains_recipe_with_famt(config, tokenizer, second_size):
    import os.path as osp

    from mmengine.config import Config
    from tests.conftest import REPO
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    assert cfg.model.target_generator.type == tokenizer
    assert cfg.model.target_generator.init_cfg.type == 'Pretrained'  # the real tokenizer
    assert cfg.data_preprocessor.type == 'FAMTTwoNormDataPreprocessor'
    steps = cfg.train_dataloader.dataset.pipeline
    assert [s.type for s in steps] == [
        'LoadImageFromFile', 'ColorJitter', 'RandomFlip',
        'FAMTRandomResizedCropAndInterpolationWithTwoPic', 'PackInputs']
    assert (steps[3].size, steps[3].second_size) == (224, second_size)
    # the recipe's model at the recipe's grid, but narrow, with a tiny tokenizer: seconds
    cfg.model.backbone.arch = ARCH
    cfg.model.head.embed_dims = 32
    if tokenizer == 'DALL-E':
        cfg.model.target_generator.update(n_hid=8, n_blk_per_group=1)
    else:
        cfg.model.neck.backbone_arch = dict(ARCH, depth=3)
        cfg.model.neck.early_layers = 2
        cfg.model.backbone.out_indices = [-2, -1]
        cfg.model.target_generator.encoder_config.arch = dict(ARCH, num_layers=1)
    model = MODELS.build(cfg.model)  # not initialised: no download
    assert type(model).__name__ == 'FAMTBEiT' and model.grid_hw == (14, 14)
    assert model.mask_generator.check_grid(196) == ((75, 0, 121), (88, 78, 30))


@pytest.mark.parametrize('version', [1, 2])
def test_checkpoint_converts_to_beit_style_backbones_with_every_weight(version, tmp_path):
    from mmpretrain.models.backbones import BEiTViT
    from mmseg.models.backbones import BEiT as MMSegBEiT

    from tools.model_converters.famt2target import main as famt2target
    torch.manual_seed(0)
    model = build(beit_cfg(version)).eval()
    torch.nn.init.normal_(model.backbone.rel_pos_bias.relative_position_bias_table)
    src = str(tmp_path / 'epoch_1.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, src)
    final_norm = version == 1  # the v1 recipe pre-trains with a final norm, v2 without
    x = torch.randn(2, 3, IMG, IMG)
    last = {}  # the encoder's own whole-image forward: its last block's output
    model.backbone.layers[-1].register_forward_hook(lambda m, a, o: last.__setitem__('x', o))
    normed = model.backbone(x, None)[-1]
    common = dict(arch=ARCH, img_size=IMG, patch_size=PATCH, use_rel_pos_bias=True,
                  use_shared_rel_pos_bias=False, layer_scale_init_value=0.1, out_type='raw')
    for target in ('mmpretrain', 'mmdet', 'mmseg'):
        dst = str(tmp_path / f'{target}.pth')
        info = famt2target([src, dst, '--target', target])
        assert (info['style'], info['num_layers'], info['grid']) == ('beit', 3, GRID)
        state = torch.load(dst, weights_only=True)['state_dict']
        assert 'mask_token' not in state and not any(k.startswith('rel_pos_bias') for k in state)
        keep_norm = final_norm and target == 'mmpretrain'
        if target == 'mmseg':
            backbone = MMSegBEiT(img_size=IMG, patch_size=PATCH, embed_dims=32, num_layers=3,
                                 num_heads=2, mlp_ratio=2, qv_bias=True, init_values=0.1,
                                 norm_cfg=dict(type='LN', eps=1e-6), final_norm=False,
                                 out_indices=[2])
        else:  # mmdet: mmpretrain's BEiTViT under SimpleFeaturePyramid
            backbone = BEiTViT(final_norm=keep_norm, **common)
        backbone.load_state_dict(state, strict=True)  # every key, nothing new
        backbone.eval()  # the pre-trained encoder's features, each layer its own table
        ref = normed if keep_norm else last['x']
        out = backbone(x)[-1]
        if target == 'mmseg':  # the patch tokens as a B x C x h x w map
            ref = ref[:, 1:].transpose(1, 2).reshape(out.shape)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
