"""Tests of famt_mm.models.famt_weights: attention / frequency terms, combination, guard rails
(the bank's encoding: tests/test_bank/test_encoding.py)."""
import math

import numpy as np
import pytest
import torch

from famt_mm.models.famt_weights import (COMBINE_MODES, cls_attention_term, combine_terms,
                                         column_mean_attention_term, frequency_kernel_1d,
                                         frequency_term, frequency_term_2d, sanitize_weights)

# ---------------------------------------------------------------------------------------------
# attention terms


def test_cls_attention_term_minmax_per_head_then_mean():
    attn = torch.tensor([[[0.1, 0.3, 0.5],  # -> 0, 0.5, 1
                          [0.6, 0.2, 0.2]]])  # -> 1, 0, 0
    out = cls_attention_term(attn)
    assert out.shape == (1, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.25, 0.5]]))


def test_cls_attention_term_constant_head_and_half_input():
    attn = torch.tensor([[[0.2, 0.2, 0.2], [0.0, 0.1, 0.4]]]).half()
    out = cls_attention_term(attn)  # constant head -> ones, not NaN
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.625, 1.0]]), atol=1e-3, rtol=0)
    assert torch.equal(cls_attention_term(torch.full((2, 4, 5), 0.2)), torch.ones(2, 5))


def test_column_mean_attention_term_hand_example():
    # N = 3 (CLS + 2 patches), 2 heads; rows are queries
    attn = torch.tensor([[[[0.5, 0.25, 0.25], [0.1, 0.7, 0.2], [0.2, 0.5, 0.3]],
                          [[0.9, 0.05, 0.05], [0.3, 0.1, 0.6], [0.4, 0.2, 0.4]]]])
    # head 0 column means over patch rows: (0.6, 0.25) -> (1, 0); head 1: (0.15, 0.5) -> (0, 1)
    out = column_mean_attention_term(attn)
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.5]]))
    # the CLS query row must not count: changing it leaves the result unchanged
    attn2 = attn.clone()
    attn2[:, :, 0] = torch.tensor([0.0, 0.0, 1.0])
    torch.testing.assert_close(column_mean_attention_term(attn2), out)
    # three patches, one head, to see the column mean itself
    a = torch.tensor([[[[0.1, 0.3, 0.3, 0.3], [0.0, 0.2, 0.4, 0.4], [0.0, 0.2, 0.2, 0.6],
                        [0.0, 0.5, 0.1, 0.4]]]])
    # column means over rows 1..3 of columns 1..3: (0.3, 0.7/3, 1.4/3)
    expected = (torch.tensor([0.3, 0.7 / 3, 1.4 / 3]) - 0.7 / 3) / (1.4 / 3 - 0.7 / 3)
    torch.testing.assert_close(column_mean_attention_term(a), expected[None])


# ---------------------------------------------------------------------------------------------
# frequency terms


def _numpy_frequency_term(x, cutoff):
    """The spec's formula, written independently with numpy.fft and loops."""
    b, length, c = x.shape
    m0 = (length - 1) / 2
    s = cutoff * length / 2
    g = np.array([1 - math.exp(-(k - m0)**2 / (2 * s * s)) for k in range(length)])
    out = np.zeros((b, length))
    for i in range(b):
        energy = np.zeros(length)
        for ch in range(c):
            spec = np.fft.fft(x[i, :, ch], norm='ortho')
            low = np.fft.ifft(spec * g, norm='ortho')
            energy += np.abs(low)
        out[i] = energy / np.abs(x[i]).sum(axis=1).mean()
    return out


def _numpy_frequency_term_2d(x, hw, cutoff):
    """The documented 2-D formula, independently with numpy.fft and loops."""
    b, length, c = x.shape
    h, w = hw
    g = np.zeros((h, w))
    sigma = cutoff / 2
    for u in range(h):
        for v in range(w):
            rho = math.hypot((u - h // 2) / h, (v - w // 2) / w)
            g[u, v] = 1 - math.exp(-max(0.5 - rho, 0.0)**2 / (2 * sigma * sigma))
    out = np.zeros((b, length))
    for i in range(b):
        energy = np.zeros((h, w))
        for ch in range(c):
            spec = np.fft.fftshift(np.fft.fft2(x[i, :, ch].reshape(h, w), norm='ortho'))
            low = np.fft.ifft2(np.fft.ifftshift(spec * g), norm='ortho')
            energy += np.abs(low)
        out[i] = energy.reshape(-1) / np.abs(x[i]).sum(axis=1).mean()
    return out


@pytest.mark.parametrize('length', [196, 49, 10])
@pytest.mark.parametrize('cutoff', [0.15, 0.4])
def test_frequency_term_matches_numpy_reference(length, cutoff):
    rng = np.random.default_rng(length)
    # smooth-ish signal plus noise so that the low-pass really changes it
    x = rng.standard_normal((2, length, 8)) + np.cos(np.arange(length) / 3)[None, :, None]
    out = frequency_term(torch.tensor(x, dtype=torch.float32), cutoff=cutoff)
    assert out.shape == (2, length) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), _numpy_frequency_term(x, cutoff), rtol=1e-4,
                               atol=1e-5)


def test_frequency_term_half_input_computed_in_float32():
    torch.manual_seed(0)
    x = torch.randn(2, 196, 16)
    out = frequency_term(x.half())
    assert out.dtype == torch.float32
    ref = _numpy_frequency_term(x.half().double().numpy(), 0.15)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)


def test_frequency_term_cutoff_changes_result():
    torch.manual_seed(0)
    x = torch.randn(2, 196, 16)
    a, b = frequency_term(x, 0.15), frequency_term(x, 0.5)
    assert (a - b).abs().max() > 1e-2


def test_frequency_kernel_suppresses_bin_m0():
    g = frequency_kernel_1d(9, 0.15)  # odd L: m0 = 4 is a bin
    assert g[4].item() == 0.0
    assert g[0].item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(g[:4].diff() < 0) and torch.all(g[5:].diff() > 0)


def test_frequency_term_passes_constant_and_kills_alternating_tokens():
    length, c = 196, 4
    const = torch.ones(1, length, c)
    alt = (torch.tensor([1.0, -1.0]).repeat(length // 2))[None, :, None].expand(1, length, c)
    f_const = frequency_term(const)
    f_alt = frequency_term(alt)
    # DC passes with G(0) ~ 1; the Nyquist bin L/2 sits half a bin from m0: G ~ 6e-4
    torch.testing.assert_close(f_const, torch.ones_like(f_const), atol=1e-5, rtol=0)
    s = 0.15 * length / 2
    g_nyq = 1 - math.exp(-0.25 / (2 * s * s))
    torch.testing.assert_close(f_alt, torch.full_like(f_alt, g_nyq), atol=1e-5, rtol=1e-3)


def test_frequency_term_zero_tokens_give_zero_not_nan():
    out = frequency_term(torch.zeros(1, 16, 3))
    assert torch.equal(out, torch.zeros(1, 16))


@pytest.mark.parametrize('hw', [(14, 14), (4, 6), (5, 7)])
def test_frequency_term_2d_matches_numpy_reference(hw):
    rng = np.random.default_rng(sum(hw))
    x = rng.standard_normal((2, hw[0] * hw[1], 6)) + 1.0
    out = frequency_term_2d(torch.tensor(x, dtype=torch.float32), hw)
    assert out.shape == (2, hw[0] * hw[1]) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), _numpy_frequency_term_2d(x, hw, 0.15), rtol=1e-4,
                               atol=1e-5)
    assert (frequency_term_2d(torch.tensor(x, dtype=torch.float32), hw, 0.6) - out).abs().max() \
        > 1e-2


def test_frequency_term_2d_kills_checkerboard():
    h, w = 14, 14
    checker = ((torch.arange(h)[:, None] + torch.arange(w)[None]) % 2 * 2 - 1).float()
    x = checker.reshape(1, h * w, 1).expand(1, h * w, 3)
    assert frequency_term_2d(x, (h, w)).abs().max() < 1e-6  # corner of the spectrum: G2 = 0
    torch.testing.assert_close(frequency_term_2d(torch.ones(1, h * w, 3), (h, w)),
                               torch.ones(1, h * w), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match='h\\*w'):
        frequency_term_2d(x, (7, 7))


# ---------------------------------------------------------------------------------------------
# combination and guard rails


def test_combine_modes():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 2.0]])
    f = torch.tensor([[2.0, 2.0, 2.0], [1.0, 3.0, 2.0]])
    g = torch.tensor([[1.0, 4.0, 1.0], [2.0, 2.0, 2.0]])
    assert COMBINE_MODES == ('product', 'sum')
    assert torch.equal(combine_terms([a, f]), a * f)
    assert torch.equal(combine_terms([a, f, g], 'product'), a * f * g)
    assert torch.equal(combine_terms([a]), a) and torch.equal(combine_terms([f], 'sum'), f)
    expected = torch.tensor([[0.5 + 1.0, 1.0 + 1.0, 1.5 + 1.0], [0.5 + 0.5, 0.5 + 1.5, 2.0 + 1.0]])
    torch.testing.assert_close(combine_terms([a, f], 'sum'), expected)
    torch.testing.assert_close(combine_terms([a, f, g], 'sum'), expected + g / 2)


def test_combine_unknown_mode_and_mismatched_terms():
    with pytest.raises(ValueError, match="'max'.*product.*sum"):
        combine_terms([torch.ones(1, 3), torch.ones(1, 3)], 'max')
    with pytest.raises(ValueError, match='differ in shape'):
        combine_terms([torch.ones(1, 3), torch.ones(1, 4)])


def test_sanitize_weights_fallback_rows():
    nan, inf = float('nan'), float('inf')
    w = torch.tensor([
        [1.0, 2.0, 4.0, 0.0],  # fine, the zero is floored
        [1.0, nan, 1.0, 1.0],
        [1.0, inf, 1.0, 1.0],
        [-inf, 1.0, 1.0, 1.0],
        [0.0, 0.0, 0.0, 0.0],
        [-1.0, 0.5, 0.2, 0.1],  # sum <= 0
        [3.0, 3.0, 3.0, 3.0],
    ])
    clean, fallback = sanitize_weights(w, eps=1e-3)
    assert fallback.dtype == torch.bool
    assert fallback.tolist() == [False, True, True, True, True, True, False]
    assert torch.equal(clean[fallback], torch.ones(5, 4))
    torch.testing.assert_close(clean[0], torch.tensor([1.0, 2.0, 4.0, 4e-3]))
    torch.testing.assert_close(clean[6], w[6])
    assert torch.isfinite(clean.log()).all()


def test_sanitize_weights_keeps_map_shape():
    w = torch.rand(3, 14, 14)
    w[1] = 0
    clean, fallback = sanitize_weights(w)
    assert clean.shape == (3, 14, 14) and fallback.tolist() == [False, True, False]
    assert torch.all(clean[0] >= 1e-6 * w[0].max())
