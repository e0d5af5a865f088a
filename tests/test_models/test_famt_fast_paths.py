"""The fast paths of the FAMT step give what the straightforward computation gives."""
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import famt_mm  # noqa: F401  (registers the modules)
from famt_mm.bank import WeightBank
from famt_mm.models import famt_weights
from famt_mm.models.patch_ids import embed_patch_ids, gather_patches, gather_tokens

ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def vit(**kwargs):
    model = MODELS.build(dict(type='FAMTViT', arch=ARCH, img_size=32, patch_size=8, **kwargs))
    model.init_weights()
    return model


def test_visible_patch_embedding_matches_embedding_all_then_gathering():
    torch.manual_seed(0)
    model = vit()
    x = torch.randn(3, 3, 32, 32)
    ids = torch.rand(3, 16).argsort(1)[:, :5]
    ours = embed_patch_ids(model.patch_embed, x, ids)
    ref = gather_tokens(model.patch_embed(x)[0], ids)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    # and the gradient of the projection is the same
    g = torch.randn_like(ref)
    w_ours = torch.autograd.grad((ours * g).sum(), model.patch_embed.projection.weight)[0]
    w_ref = torch.autograd.grad((gather_tokens(model.patch_embed(x)[0], ids) * g).sum(),
                                model.patch_embed.projection.weight)[0]
    torch.testing.assert_close(w_ours, w_ref, rtol=1e-5, atol=1e-6)


def test_patch_embedding_with_a_norm_takes_the_general_path():
    torch.manual_seed(0)
    model = vit(patch_cfg=dict(norm_cfg=dict(type='LN')))
    assert model.patch_embed.norm is not None
    x = torch.randn(2, 3, 32, 32)
    ids = torch.rand(2, 16).argsort(1)[:, :4]
    torch.testing.assert_close(embed_patch_ids(model.patch_embed, x, ids),
                               gather_tokens(model.patch_embed(x)[0], ids))


def test_encoder_on_visible_ids_matches_maevit_on_the_same_ids():
    torch.manual_seed(0)
    model = vit()
    x = torch.randn(2, 3, 32, 32)
    order = torch.rand(2, 16).argsort(1)
    ids_visible = order[:, :4]

    def fixed_masking(tokens, mask_ratio=0.75):
        kept = gather_tokens(tokens, ids_visible)
        return kept, None, None
    ours = model.forward_famt(x, ids_visible)
    model.random_masking = fixed_masking
    ref = model(x)[0]  # MAEViT.forward: embed all, add pos, keep ids_visible
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('norm_pix', [True, False])
def test_masked_target_matches_mae_target_then_gather(norm_pix):
    torch.manual_seed(0)
    head = MODELS.build(dict(type='FAMTPretrainHead', norm_pix=norm_pix, patch_size=8,
                             loss=dict(type='PixelReconstructionLoss', criterion='L2')))
    x = torch.randn(3, 3, 32, 32)
    ids = torch.rand(3, 16).argsort(1)[:, :7]
    ref = gather_tokens(head.construct_target(x), ids)
    torch.testing.assert_close(head.masked_target(x, ids), ref, rtol=1e-5, atol=1e-6)


def test_gather_patches_layouts():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)  # 2 x 3 patches of 2
    ids = torch.tensor([[5, 0], [1, 3]])
    pqc = gather_patches(x, ids, 2, layout='pqc')
    cpq = gather_patches(x, ids, 2, layout='cpq')
    # patch 5 of image 0: grid row 1, column 2 -> pixels rows 2-3, columns 4-5
    block = x[0, :, 2:4, 4:6]  # C x p x p
    assert torch.equal(cpq[0, 0], block.reshape(-1))
    assert torch.equal(pqc[0, 0], block.permute(1, 2, 0).reshape(-1))
    assert torch.equal(cpq[1, 1], x[1, :, 2:4, 0:2].reshape(-1))


def _samples(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x1, y1 = (torch.rand(2, generator=g) * 0.5).tolist()
        size = 0.3 + 0.2 * float(torch.rand(1, generator=g))
        flip = bool(i % 2)
        out.append(DataSample(metainfo=dict(
            sample_idx=i, famt_crop=(x1, y1, x1 + size, y1 + size), flip=flip,
            flip_direction='horizontal' if flip else None)))
    return out


def test_sampling_is_the_same_under_autocast():
    """The crop mapping and the draw run in fp32 even inside an AMP forward."""
    gen = MODELS.build(dict(type='FAMTMaskGenerator'))
    torch.manual_seed(0)
    bank = torch.rand(64, 14 * 14) ** 4 + 1e-3
    gen.set_bank(WeightBank.from_maps(
        famt_weights.quantize_weights(bank, 'float16').view(64, 14, 14)))
    gen.famt_active = True
    samples = _samples(64)
    ref = gen.sample(samples, (14, 14), 64, 'cpu', generator=torch.Generator().manual_seed(1))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        amp = gen.sample(samples, (14, 14), 64, 'cpu',
                         generator=torch.Generator().manual_seed(1))
    for a, b in zip(ref, amp):
        assert torch.equal(a, b)


def test_crop_weights_of_a_batch_match_one_sample_at_a_time():
    """The batched meta data path maps each sample with its own box and flip."""
    from famt_mm.models.famt_sampling import map_weights_to_crop
    gen = MODELS.build(dict(type='FAMTMaskGenerator', bank_dtype='uint8'))
    torch.manual_seed(0)
    bank = famt_weights.quantize_weights(torch.rand(8, 36) + 0.01, 'uint8').view(8, 6, 6)
    gen.set_bank(WeightBank.from_maps(bank))
    samples = _samples(8, seed=3)[::-1]  # sample_idx 7..0, not the batch position
    out = gen.crop_weights(samples, (4, 4), 'cpu')
    for b, s in enumerate(samples):
        maps = famt_weights.dequantize_weights(bank[s.sample_idx:s.sample_idx + 1])
        one = map_weights_to_crop(maps, torch.tensor([s.famt_crop], dtype=torch.float32), (4, 4),
                                  flip=torch.tensor([s.flip]))
        torch.testing.assert_close(out[b:b + 1], one)


def test_uint8_bank_end_to_end(tmp_path):
    """bank_dtype='uint8' through the real Runner: 1 byte per patch in the hook, the
    training step and the checkpoint, and a resumed run trains on the restored bank."""
    from mmengine.runner import Runner

    from famt_mm.compat import load_local_checkpoint
    from famt_mm.engine import FAMTWeightHook
    from tests.conftest import tiny_cfg
    opts = {'model.mask_generator.bank_dtype': 'uint8'}
    runner = Runner.from_cfg(tiny_cfg(tmp_path / 'work', max_epochs=2, start_epoch=1,
                                      interval=1, **opts))
    gen = runner.model.mask_generator
    seen = []
    original = gen.sample

    def sample(*args, **kwargs):
        if gen.famt_active:
            seen.append(gen.bank.dtype)
        return original(*args, **kwargs)
    gen.sample = sample
    runner.train()
    assert seen and set(seen) == {torch.uint8}
    bank = load_local_checkpoint(str(tmp_path / 'work' / 'epoch_2.pth'))['famt']['bank']
    assert bank.dtype == torch.uint8 and bank.shape == (40, 4, 4)
    assert bank.numel() * bank.element_size() == 40 * 16  # 1 byte per patch
    assert int(bank.min()) >= 1 and int(bank.max()) == 255
    # resume into a 3-epoch run: the bank comes back as it was saved, and FAMT steps run on it
    runner = Runner.from_cfg(tiny_cfg(tmp_path / 'work', max_epochs=3, start_epoch=1,
                                      interval=5, resume=True, **opts))
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, FAMTWeightHook))
    assert hook.refresh_epochs_done == [] and hook.bank_epoch == 1  # restored, not recomputed
    assert hook.bank.dtype == torch.uint8 and torch.equal(hook.bank, bank)
