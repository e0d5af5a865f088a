"""FAMT sampling weights: attention term, frequency term, their combination and guard rails.

Plain tensor functions (no mmengine / mmcv) so that the weight refresh, the mask generator, the
visualisation tools and the tests all share one implementation; the registry that selects them
by name is ``weight_terms``. How the bank stores a map (quantisation) is
``famt_mm.bank.encoding``. The method: docs/method.md sections 1 and 6.

Shapes: B images, H heads, L = h * w patches in raster order, N = L + 1 tokens (token 0 = CLS),
C channels. Every term is returned as float32 (float64 inputs stay float64).
"""
import torch

# the bank's encoding, re-exported for tools/ and tests/ that import it from here
from ..bank.encoding import dequantize_weights, quantize_weights  # noqa: F401

__all__ = [
    'COMBINE_MODES', 'cls_attention_term', 'column_mean_attention_term', 'frequency_kernel_1d',
    'frequency_kernel_2d', 'frequency_term', 'frequency_term_2d', 'combine_terms',
    'sanitize_weights', 'quantize_weights', 'dequantize_weights'
]

#: Valid ``mode`` values of :func:`combine_terms`.
COMBINE_MODES = ('product', 'sum')

# Ranges / denominators at or below this count as zero (attention probabilities are >= 0).
_TINY = 1e-12


def _float(x):
    """Promote half / bfloat16 / integer tensors to float32; keep float32 and float64."""
    return x.to(torch.promote_types(x.dtype, torch.float32)) if x.is_floating_point() \
        else x.float()


def _minmax_heads_then_mean(scores):
    """Per-head min-max over the patches, then the mean over heads.

    Args:
        scores (Tensor): B x H x L.

    Returns:
        Tensor: B x L in [0, 1]. A head whose scores are all equal carries no preference, so it
        becomes all ones (not 0/0); a map made only of such heads is uniform, not a fallback.
    """
    scores = _float(scores)
    lo = scores.amin(dim=-1, keepdim=True)
    rng = scores.amax(dim=-1, keepdim=True) - lo
    flat = rng <= _TINY
    norm = torch.where(flat, torch.ones_like(scores), (scores - lo) / rng.clamp_min(_TINY))
    return norm.mean(dim=1)


def cls_attention_term(attn_cls):
    """Attention term A: how much the CLS query attends to each patch (docs/method.md section 1.1).

    Args:
        attn_cls (Tensor): B x H x L softmax attention probabilities of the last block from the
            CLS query to the L patch keys (the CLS key column already dropped).

    Returns:
        Tensor: B x L, each head min-max normalised over the patches to [0, 1], then averaged
        over heads. A constant head (zero range) contributes ones.
    """
    if attn_cls.dim() != 3:
        raise ValueError(f'attn_cls must be B x H x L, got shape {tuple(attn_cls.shape)}')
    return _minmax_heads_then_mean(attn_cls)


def column_mean_attention_term(attn):
    """Column-mean attention term: how much all patches attend to each patch.

    The variant of the public FAMT repository, kept as an option. For each head the attention
    to patch key j is averaged over the patch query rows 1..N-1 (the CLS row is left out, it is
    :func:`cls_attention_term`'s job); each head is min-max normalised over the patches to
    [0, 1]; heads are combined by a plain mean (the public repository's head weighting is not
    reproduced: it is undocumented and a plain mean keeps the two terms comparable).

    Args:
        attn (Tensor): B x H x N x N full softmax attention of the last block, N = L + 1,
            token 0 = CLS, rows = queries, columns = keys.

    Returns:
        Tensor: B x L in [0, 1].
    """
    if attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f'attn must be B x H x N x N, got shape {tuple(attn.shape)}')
    col_mean = _float(attn[:, :, 1:, 1:]).mean(dim=2)  # B x H x L
    return _minmax_heads_then_mean(col_mean)


def frequency_kernel_1d(length, cutoff=0.15, device=None, dtype=torch.float32):
    """The Gaussian kernel of docs/method.md section 1.2, on the NON-shifted 1-D spectrum.

    ``G(k) = 1 - exp(-(k - m0)^2 / (2 s^2))`` for ``k = 0..L-1``, ``m0 = (L - 1) / 2``,
    ``s = cutoff * L / 2``. Bin m0 is the highest frequency of an unshifted spectrum, so G
    removes the highest frequencies and keeps DC (G(0) ~ 1): a low-pass.

    Returns:
        Tensor: L.
    """
    if cutoff <= 0:
        raise ValueError(f'cutoff must be > 0, got {cutoff}')
    k = torch.arange(length, device=device, dtype=dtype)
    m0 = (length - 1) / 2
    s = cutoff * length / 2
    return 1 - torch.exp(-(k - m0) ** 2 / (2 * s * s))


def frequency_kernel_2d(grid_hw, cutoff=0.15, device=None, dtype=torch.float32):
    """Radial version of :func:`frequency_kernel_1d`, laid out on the fftshift-ed h x w spectrum.

    With the normalised radial frequency (cycles per patch) of shifted bin (u, v)
    ``rho = sqrt(((u - h // 2) / h)^2 + ((v - w // 2) / w)^2)`` the kernel is
    ``G2 = 1 - exp(-max(0.5 - rho, 0)^2 / (2 sigma^2))`` with ``sigma = cutoff / 2``.
    0.5 is the Nyquist radius: G2 = 0 there and beyond (the grid's corners), ~1 at DC. Along
    one axis this is the 1-D kernel written in normalised units (``(k - m0) / L`` -> ``0.5 -
    rho``, ``s / L = cutoff / 2``), up to the 1-D kernel's half-bin offset of m0.

    Returns:
        Tensor: h x w, DC at (h // 2, w // 2) as after ``torch.fft.fftshift``.
    """
    if cutoff <= 0:
        raise ValueError(f'cutoff must be > 0, got {cutoff}')
    h, w = grid_hw
    fu = (torch.arange(h, device=device, dtype=dtype) - h // 2) / h
    fv = (torch.arange(w, device=device, dtype=dtype) - w // 2) / w
    rho = torch.sqrt(fu[:, None] ** 2 + fv[None, :] ** 2)
    sigma = cutoff / 2
    return 1 - torch.exp(-(0.5 - rho).clamp_min(0) ** 2 / (2 * sigma * sigma))


def _energy_ratio(x_low, x):
    """F(j) = sum_c |x_low(j, c)| / mean_j sum_c |x(j, c)|, per image. x_low, x: B x L x C."""
    denom = x.abs().sum(dim=-1).mean(dim=1, keepdim=True)  # B x 1
    # all-zero tokens give F = 0, which sanitize_weights then turns into a counted fallback
    return x_low.abs().sum(dim=-1) / denom.clamp_min(_TINY)


def frequency_term(x, cutoff=0.15):
    """Frequency term F: low-passed token energy along the raster sequence.

    docs/method.md section 1.2.

    FFT along the token axis per channel (norm 'ortho'), multiply by
    :func:`frequency_kernel_1d`, inverse FFT (norm 'ortho'), then
    ``F(j) = sum_c |X_low(j, c)| / mean_j sum_c |X(j, c)|`` per image. Because m0 = (L - 1) / 2
    makes G slightly asymmetric (G(k) != G(L - k)), X_low is complex; |.| is its modulus.

    Args:
        x (Tensor): B x L x C last-block output patch tokens (before the final norm), raster
            order, no CLS token. Half inputs are computed in float32.
        cutoff (float): kernel width relative to half the sequence length.

    Returns:
        Tensor: B x L (float32), mean ~1 for a smooth image.
    """
    if x.dim() != 3:
        raise ValueError(f'x must be B x L x C, got shape {tuple(x.shape)}')
    x = _float(x)
    g = frequency_kernel_1d(x.shape[1], cutoff, device=x.device, dtype=x.dtype)
    spec = torch.fft.fft(x, dim=1, norm='ortho')
    x_low = torch.fft.ifft(spec * g[None, :, None], dim=1, norm='ortho')
    return _energy_ratio(x_low, x)


def frequency_term_2d(x, grid_hw, cutoff=0.15):
    """2-D ablation of :func:`frequency_term`: FFT over the h x w patch grid.

    ``fft2`` (norm 'ortho') over the grid per channel, ``fftshift``, multiply by
    :func:`frequency_kernel_2d` (formula there), ``ifftshift``, ``ifft2`` (norm 'ortho'), then
    the same energy ratio as the 1-D term.

    Args:
        x (Tensor): B x L x C patch tokens in raster order, L = h * w.
        grid_hw (tuple[int, int]): (h, w) patch grid.
        cutoff (float): kernel width, see :func:`frequency_kernel_2d`.

    Returns:
        Tensor: B x L (float32).
    """
    h, w = grid_hw
    if x.dim() != 3 or x.shape[1] != h * w:
        raise ValueError(f'x must be B x (h*w) x C with (h, w) = {(h, w)}, '
                         f'got shape {tuple(x.shape)}')
    x = _float(x)
    b, length, c = x.shape
    grid = x.reshape(b, h, w, c)
    spec = torch.fft.fftshift(torch.fft.fft2(grid, dim=(1, 2), norm='ortho'), dim=(1, 2))
    g = frequency_kernel_2d((h, w), cutoff, device=x.device, dtype=x.dtype)
    spec = torch.fft.ifftshift(spec * g[None, :, :, None], dim=(1, 2))
    x_low = torch.fft.ifft2(spec, dim=(1, 2), norm='ortho').reshape(b, length, c)
    return _energy_ratio(x_low, x)


def _row_mean(t):
    """Per-image mean over every non-batch dim, shaped to broadcast against t."""
    return t.reshape(t.shape[0], -1).mean(dim=1).reshape((-1, ) + (1, ) * (t.dim() - 1))


def combine_terms(terms, mode='product'):
    """Combine weight terms into sampling weights W (docs/method.md section 1.4).

    Modes: 'product' ``T1 * T2 * ...`` (the default: ``A * F``); 'sum'
    ``T1 / mean(T1) + T2 / mean(T2) + ...`` with per-image means, so no term dominates by
    scale. One term is returned as it is (as float).

    Args:
        terms (Sequence[Tensor]): one or more B x L (or B x h x w) tensors of one shape.
        mode (str): one of :data:`COMBINE_MODES`.

    Returns:
        Tensor: B x L (same shape as the inputs), not yet sanitized.
    """
    if mode not in COMBINE_MODES:
        raise ValueError(f'unknown combine mode {mode!r}; valid modes: {COMBINE_MODES}')
    terms = [_float(t) for t in terms]
    if not terms:
        raise ValueError('combine_terms needs at least one term')
    shapes = {tuple(t.shape) for t in terms}
    if len(shapes) != 1:
        raise ValueError(f'the terms differ in shape: {sorted(shapes)}')
    if len(terms) == 1:
        return terms[0]
    if mode == 'product':
        out = terms[0]
        for t in terms[1:]:
            out = out * t
        return out
    out = terms[0] / _row_mean(terms[0]).clamp_min(_TINY)
    for t in terms[1:]:
        out = out + t / _row_mean(t).clamp_min(_TINY)
    return out


def sanitize_weights(w, eps=1e-6):
    """Guard rails of docs/method.md section 1.5: every row finite, positive, log-safe.

    A row (one image's map) with any NaN / inf, or with sum <= 0 (e.g. all zeros), becomes
    uniform ones and is reported in ``fallback`` (callers count and log it, never silently).
    Every other row is clamped to ``>= eps * row max`` so that ``log w`` is finite.

    Args:
        w (Tensor): B x L or B x h x w.
        eps (float): floor relative to the row maximum.

    Returns:
        tuple[Tensor, Tensor]: ``w_clean`` (same shape, float32) and ``fallback`` (B bool).
    """
    w = _float(w)
    flat = w.reshape(w.shape[0], -1)
    finite = torch.isfinite(flat).all(dim=1)
    # inf / NaN rows are zeroed before the sum so that the sum itself stays finite
    safe = torch.where(torch.isfinite(flat), flat, torch.zeros_like(flat))
    fallback = ~finite | (safe.sum(dim=1) <= 0)
    floor = eps * safe.amax(dim=1, keepdim=True)
    clean = torch.where(fallback[:, None], torch.ones_like(flat), torch.maximum(safe, floor))
    return clean.reshape(w.shape), fallback
