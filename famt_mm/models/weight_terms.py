"""The weight terms FAMT can combine, by name: a term is one function plus its registration.

A term maps a :class:`TermContext` (what the encoder and the image give for a batch of whole
images) to one score per patch, B x L (L = h * w patches in raster order, float32, >= 0,
any per-image scale). ``FAMTMaskGenerator(terms=(...), combine=...)`` selects and combines
them (docs/method.md sections 1.1 to 1.4); the pictures draw every selected term. A new term::

    @register_weight_term('my_term')
    def my_term(ctx, strength=1.0):
        return ...  # B x L

and ``terms=('attention', 'my_term')``, ``term_args=dict(my_term=dict(strength=2.0))`` in the
config. ``needs`` names the optional context fields it reads (``attn_full``, ``images``,
``sample_idx``) so that the model computes them only when a selected term asks.
"""
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .famt_weights import (cls_attention_term, column_mean_attention_term, frequency_term,
                           frequency_term_2d)

__all__ = ['TermContext', 'WeightTerm', 'WEIGHT_TERMS', 'OPTIONAL_INPUTS',
           'register_weight_term', 'get_weight_term']

#: Context fields a term may need; the others are always there.
OPTIONAL_INPUTS = ('attn_full', 'images', 'sample_idx')


@dataclass
class TermContext:
    """What the terms are computed from, for B whole, un-augmented images.

    Attributes:
        attn_cls: B x H x L, the last block's softmax attention from CLS to each patch.
        tokens: B x L x C, the last block's patch tokens (before the final norm).
        grid_hw: (h, w), the patch grid of ``tokens``, L = h * w.
        patch_size: (p_h, p_w) in pixels.
        images: B x 3 x H x W, the normalised input images (H = h * p_h), if needed.
        attn_full: B x H x N x N, the last block's full attention (N = L + 1), if needed.
        sample_idx: B (long), the images' training-set indices, if needed (only the refresh
            pass knows them: ``FAMTWeighting.given_sample_idx``).
    """
    attn_cls: torch.Tensor
    tokens: torch.Tensor
    grid_hw: Tuple[int, int]
    patch_size: Tuple[int, int]
    images: Optional[torch.Tensor] = None
    attn_full: Optional[torch.Tensor] = None
    sample_idx: Optional[torch.Tensor] = None


@dataclass(frozen=True)
class WeightTerm:
    name: str
    fn: Callable[..., torch.Tensor]
    needs: FrozenSet[str]


#: Every registered term, by name.
WEIGHT_TERMS: Dict[str, WeightTerm] = {}


def register_weight_term(name: str, needs: Sequence[str] = ()):
    """Decorator: register ``fn(ctx, **args) -> B x L`` as the weight term ``name``."""
    unknown = set(needs) - set(OPTIONAL_INPUTS)
    if unknown:
        raise ValueError(f'weight term {name!r}: unknown needs {sorted(unknown)}; '
                         f'choose from {OPTIONAL_INPUTS}')

    def register(fn):
        if name in WEIGHT_TERMS:
            raise KeyError(f'weight term {name!r} is already registered')
        WEIGHT_TERMS[name] = WeightTerm(name, fn, frozenset(needs))
        return fn
    return register


def get_weight_term(name: str) -> WeightTerm:
    if name not in WEIGHT_TERMS:
        raise ValueError(f'unknown weight term {name!r}; registered terms: '
                         f'{sorted(WEIGHT_TERMS)}')
    return WEIGHT_TERMS[name]


@register_weight_term('attention')
def attention(ctx: TermContext) -> torch.Tensor:
    """A: CLS attention, each head min-max normalised, mean over heads (method 1.1)."""
    return cls_attention_term(ctx.attn_cls)


@register_weight_term('attention_column', needs=('attn_full', ))
def attention_column(ctx: TermContext) -> torch.Tensor:
    """Mean of A and the column-mean attention (the public FAMT repository's variant)."""
    return 0.5 * (cls_attention_term(ctx.attn_cls) + column_mean_attention_term(ctx.attn_full))


@register_weight_term('frequency')
def frequency(ctx: TermContext, cutoff: float = 0.15) -> torch.Tensor:
    """F: low-passed token energy along the raster sequence (method 1.2)."""
    return frequency_term(ctx.tokens, cutoff)


@register_weight_term('frequency_2d')
def frequency_2d(ctx: TermContext, cutoff: float = 0.15) -> torch.Tensor:
    """The 2-D ablation of F: FFT over the h x w patch grid, radial low-pass."""
    return frequency_term_2d(ctx.tokens, ctx.grid_hw, cutoff)


@register_weight_term('gradient', needs=('images', ))
def gradient(ctx: TermContext) -> torch.Tensor:
    """Pixel-space term: the mean image-gradient magnitude inside each patch (method 1.3).

    Central differences of the normalised image (border replicated), the gradient's length
    per channel summed over the channels, averaged over each patch's pixels: edges and
    texture score high, flat patches near 0. Needs no encoder.
    """
    x = ctx.images.float()  # B x 3 x H x W
    gx = F.pad(x, (1, 1, 0, 0), mode='replicate')
    gy = F.pad(x, (0, 0, 1, 1), mode='replicate')
    gx = (gx[..., 2:] - gx[..., :-2]) / 2
    gy = (gy[..., 2:, :] - gy[..., :-2, :]) / 2
    energy = (gx.square() + gy.square()).sqrt().sum(1, keepdim=True)  # B x 1 x H x W
    return F.avg_pool2d(energy, tuple(ctx.patch_size)).flatten(1)
