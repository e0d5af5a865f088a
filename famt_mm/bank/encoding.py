"""How the bank stores a weight map: each row over its maximum, as float16 or uint8.

The one place that knows the bank's dtypes (:data:`BANK_DTYPES`) and the encoding
(:func:`quantize_weights` / :func:`dequantize_weights`); plain tensor functions.
docs/method.md section 6 (the bank).
"""
from typing import Dict

import numpy as np
import torch

#: The bank's storage dtypes by the name a config uses (``FAMTMaskGenerator.bank_dtype``):
#: 2 and 1 bytes per cell.
BANK_DTYPES: Dict[str, torch.dtype] = {'float16': torch.float16, 'uint8': torch.uint8}

#: The valid ``bank_dtype`` names, in the order of :data:`BANK_DTYPES`.
QUANT_DTYPES = tuple(BANK_DTYPES)


def dtype_name(dtype) -> str:
    """'float16' or 'uint8' for a name, a torch dtype or a numpy dtype of the bank; raises
    ``ValueError`` naming the valid ones for anything else."""
    name = str(np.dtype(dtype)) if isinstance(dtype, np.dtype) else \
        str(dtype).replace('torch.', '')
    if name not in BANK_DTYPES:
        raise ValueError(f'unknown weight storage dtype {dtype!r}; valid: {QUANT_DTYPES}')
    return name


def quantize_weights(w: torch.Tensor, dtype='uint8') -> torch.Tensor:
    """Store B x L (or B x h x w) weight maps compactly.

    Each row is divided by its maximum: the Plackett-Luce sampler is invariant to a per-row
    scale, so only ratios matter. 'float16': ``w / max`` in fp16 (2 bytes per patch, relative
    error <= 2^-11, ratios down to ~1e-7 survive as subnormals). 'uint8': ``round(w / max *
    255)`` clamped to [1, 255] (1 byte per patch, absolute error <= 1/510 of the row max; ratios
    below 1/255 are raised to 1/255, which keeps every patch drawable).

    Rows must be sanitized first (``famt_mm.models.famt_weights.sanitize_weights``): finite,
    row max > 0.

    Args:
        w (Tensor): B x L or B x h x w, sanitized.
        dtype (str | torch.dtype): 'float16' or 'uint8'.

    Returns:
        Tensor: same shape, dtype torch.float16 or torch.uint8.
    """
    name = dtype_name(dtype)
    # half / integer inputs are scaled in float32, float64 stays float64
    w = w.to(torch.promote_types(w.dtype, torch.float32)) if w.is_floating_point() \
        else w.float()
    row_max = w.reshape(w.shape[0], -1).amax(dim=1)
    if not (torch.isfinite(w).all() and (row_max > 0).all()):
        raise ValueError('quantize_weights needs sanitized rows (finite, row max > 0); '
                         'call sanitize_weights first')
    scaled = w / row_max.reshape((-1, ) + (1, ) * (w.dim() - 1))
    if name == 'float16':
        return scaled.to(torch.float16)
    return (scaled * 255).round().clamp(1, 255).to(torch.uint8)


def dequantize_weights(q: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`quantize_weights`, up to the per-row scale.

    Args:
        q (Tensor): float16 or uint8 maps from :func:`quantize_weights`, any shape.

    Returns:
        Tensor: same shape, float32, row max ~1.
    """
    if q.dtype == torch.uint8:
        return q.float() / 255
    if q.dtype == torch.float16:
        return q.float()
    raise ValueError(f'expected a float16 or uint8 weight map, got {q.dtype}')


__all__ = ['BANK_DTYPES', 'QUANT_DTYPES', 'dtype_name', 'quantize_weights', 'dequantize_weights']
