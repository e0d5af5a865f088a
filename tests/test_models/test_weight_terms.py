"""Pluggable weight terms: the default FAMT config gives today's A * F weights bit for bit; a
term registered by one function is selectable from a config, combines with the others and is
drawn by the pictures."""
import os.path as osp

import pytest
import torch

from famt_mm.models import weight_terms
from famt_mm.models.famt_weights import cls_attention_term, frequency_term, sanitize_weights
from famt_mm.models.weight_terms import WEIGHT_TERMS, register_weight_term
from famt_mm.visualization import compose_famt_grid, famt_panels, panel_box
from tests.conftest import FAMT_DEMO, REPO
from tests.test_visualization import SIZE, build_tiny


def test_default_config_weights_are_attention_times_frequency_bit_for_bit(tmp_path):
    model = build_tiny(FAMT_DEMO, tmp_path)
    assert model.mask_generator.weighting.terms == ('attention', 'frequency')
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    ctx = model.famt_context(x)
    attn_cls, tokens = ctx.attn_cls, ctx.tokens
    # the formula of the code before the terms became pluggable (combine='product', cutoff 0.15)
    reference, ref_fallback = sanitize_weights(
        cls_attention_term(attn_cls) * frequency_term(tokens, 0.15), 1e-6)
    weights, fallback = model.compute_famt_weights(x)
    assert torch.equal(weights.flatten(1), reference) and torch.equal(fallback, ref_fallback)


@pytest.fixture
def centre_term():
    """A test-only term: prefers the patches near the grid centre."""
    @register_weight_term('test_centre')
    def centre(ctx, sharpness=1.0):
        h, w = ctx.grid_hw
        ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2,
                                indexing='ij')
        score = torch.exp(-sharpness * (ys ** 2 + xs ** 2)).flatten()
        return score.expand(ctx.tokens.shape[0], -1)
    yield centre
    WEIGHT_TERMS.pop('test_centre')


def test_a_registered_term_is_selected_combined_and_drawn(tmp_path, centre_term):
    model = build_tiny(FAMT_DEMO, tmp_path)
    from mmpretrain.registry import MODELS
    model.mask_generator = MODELS.build(dict(
        type='FAMTMaskGenerator', terms=('attention', 'frequency', 'test_centre'),
        term_args=dict(test_centre=dict(sharpness=2.0))))
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    ctx = model.famt_term_context(x)
    terms = model.mask_generator.weighting.compute_terms(ctx)
    assert list(terms) == ['attention', 'frequency', 'test_centre']
    weights, _ = model.compute_famt_weights(x)
    expected, _ = sanitize_weights(terms['attention'] * terms['frequency'] *
                                   centre_term(ctx, sharpness=2.0), 1e-6)
    assert torch.equal(weights.flatten(1), expected)
    panels = famt_panels(model, x, generator=torch.Generator().manual_seed(0))
    assert list(panels['terms']) == ['attention', 'frequency', 'test_centre']
    images = torch.rand(2, SIZE, SIZE, 3).numpy()
    grid = compose_famt_grid(images, panels, recon_images=images)
    # image, three terms, weights, split, reconstruction: seven columns
    assert grid.shape[1] >= panel_box(0, 6, (SIZE, SIZE))[3]
    y0, y1, x0, x1 = panel_box(0, 3, (SIZE, SIZE))
    tile = grid[y0:y1, x0:x1].astype(float)
    centre = tile[tile.shape[0] // 2 - 4:tile.shape[0] // 2 + 4,
                  tile.shape[1] // 2 - 4:tile.shape[1] // 2 + 4].mean()
    assert centre > tile[:8, :8].mean() + 50  # the centre term's panel is bright in the middle


def test_registry_refuses_duplicates_and_unknown_needs():
    with pytest.raises(KeyError, match="'attention' is already registered"):
        register_weight_term('attention')(lambda ctx: ctx.attn_cls)
    with pytest.raises(ValueError, match='unknown needs'):
        register_weight_term('x', needs=('labels', ))
    assert {'attention', 'attention_column', 'frequency', 'frequency_2d'} <= set(WEIGHT_TERMS)
    assert weight_terms.get_weight_term('attention_column').needs == {'attn_full'}


def test_gradient_term_is_the_patch_mean_gradient_magnitude_and_its_config_uses_it(tmp_path):
    from famt_mm.models.weight_terms import TermContext, get_weight_term
    img = torch.zeros(1, 3, 16, 16)
    img[:, :, :, 4:] = 1.0  # a vertical edge inside the left patch column (8 px patches)
    ctx = TermContext(attn_cls=None, tokens=torch.zeros(1, 4, 1), grid_hw=(2, 2),
                      patch_size=(8, 8), images=img)
    term = get_weight_term('gradient')
    assert term.needs == {'images'}
    # central differences: pixel columns 3 and 4 see a step of 1 / 2 in each of 3 channels
    left = 3 * 0.5 * 2 * 8 / 64
    torch.testing.assert_close(term.fn(ctx), torch.tensor([[left, 0.0, left, 0.0]]))
    # the demo config with the term: the refresh computes it from the images
    model = build_tiny(osp.join(REPO, 'configs', 'famt_mae_vit-t_demo_gradient.py'), tmp_path)
    assert model.mask_generator.weighting.terms == ('attention', 'frequency', 'gradient')
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    ctx = model.famt_term_context(x)
    assert ctx.images is x and ctx.attn_full is None
    terms = model.mask_generator.weighting.compute_terms(ctx)
    weights, _ = model.compute_famt_weights(x)
    expected, _ = sanitize_weights(terms['attention'] * terms['frequency'] * terms['gradient'],
                                   1e-6)
    assert torch.equal(weights.flatten(1), expected)
