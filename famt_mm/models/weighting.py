"""``FAMTWeighting``: which weight terms, with which arguments, and how they are combined.

Separate from the sampling (``FAMTMaskGenerator`` draws the sets from stored maps): the
refresh, the pictures and the studies compute weights with this alone. The configuration
stays where users write it, in ``mask_generator=dict(terms=..., combine=..., term_args=...,
eps=...)``; the generator builds its ``weighting`` from it.

Shapes: B images, L = h * w patches in raster order.
"""
import dataclasses
import inspect
from contextlib import contextmanager
from typing import Dict, Optional, Sequence, Tuple

import torch

from .famt_weights import COMBINE_MODES, combine_terms, sanitize_weights
from .weight_terms import TermContext, get_weight_term

__all__ = ['FAMTWeighting']


class FAMTWeighting:
    """The weight terms (famt_mm/models/weight_terms.py) and their combination.

    Args:
        terms (Sequence[str]): registered term names. ('attention', 'frequency').
        combine (str): 'product' (A * F) or 'sum' (each term over its mean).
        term_args (dict, optional): keyword arguments per term name.
        eps (float): weight floor relative to each map's maximum, in (0, 1).
        owner (str): who is configured, for the error messages.
    """

    def __init__(self, terms: Sequence[str] = ('attention', 'frequency'),
                 combine: str = 'product', term_args: Optional[Dict[str, dict]] = None,
                 eps: float = 1e-6, owner: str = 'FAMTWeighting'):
        if combine not in COMBINE_MODES:
            raise ValueError(f'{owner}: unknown combine mode {combine!r}; '
                             f'choose one of {COMBINE_MODES}')
        terms = (terms, ) if isinstance(terms, str) else tuple(terms)
        if not terms or len(set(terms)) != len(terms):
            raise ValueError(f'{owner}: terms={terms} must name one or more different weight '
                             'terms')
        try:
            self._terms = [get_weight_term(name) for name in terms]
        except ValueError as e:
            raise ValueError(f'{owner}: {e}') from e
        term_args = {k: dict(v) for k, v in (term_args or {}).items()}
        for name, args in term_args.items():  # args of unselected terms are kept, unused
            try:  # a misspelt term or argument stops here, not at the first refresh
                inspect.signature(get_weight_term(name).fn).bind(None, **args)
            except (TypeError, ValueError) as e:
                raise ValueError(f'{owner}: term_args[{name!r}]={args}: {e}') from e
            if 'cutoff' in args and not args['cutoff'] > 0:
                raise ValueError(f'{owner}: {name} cutoff={args["cutoff"]} must be > 0')
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
            raise ValueError(f'{owner}: eps={eps!r} must lie in (0, 1): it is the weight '
                             'floor relative to each map maximum (log(0) otherwise)')
        self.terms = terms
        self.combine = combine
        self.term_args = term_args
        self.eps = eps
        self._sample_idx: Optional[torch.Tensor] = None

    def needs(self, what: str) -> bool:
        """Whether a selected term reads the optional context field ``what``
        ('attn_full', 'images' or 'sample_idx', see ``TermContext``)."""
        return any(what in term.needs for term in self._terms)

    @contextmanager
    def given_sample_idx(self, sample_idx: Sequence[int]):
        """Within the block, terms that need ``sample_idx`` get these training-set indices
        (B, the batch's) in their context; a no-op when no selected term needs them. The
        refresh pass supplies them: the model's term context does not know them."""
        if not self.needs('sample_idx'):
            yield
            return
        self._sample_idx = torch.as_tensor(list(sample_idx), dtype=torch.long)
        try:
            yield
        finally:
            self._sample_idx = None

    def compute_terms(self, ctx: TermContext) -> Dict[str, torch.Tensor]:
        """Every selected term of the batch, by name: B x L float32 each (computed outside
        autocast: an AMP refresh gives the terms its encoder outputs, not its precision)."""
        if self.needs('sample_idx'):
            ctx = self._with_sample_idx(ctx)
        with torch.autocast(ctx.tokens.device.type, enabled=False):
            return {term.name: term.fn(ctx, **self.term_args.get(term.name, {})).float()
                    for term in self._terms}

    def _with_sample_idx(self, ctx: TermContext) -> TermContext:
        idx = ctx.sample_idx if ctx.sample_idx is not None else self._sample_idx
        if idx is None:  # e.g. the pictures of a config whose term reads the dataset
            raise ValueError(f'{self.terms}: a term needs the images\' training-set indices '
                             '(sample_idx); only the refresh pass gives them (wrap the call in '
                             'FAMTWeighting.given_sample_idx)')
        if idx.shape != (ctx.tokens.shape[0], ):
            raise ValueError(f'sample_idx of shape {tuple(idx.shape)} for a batch of '
                             f'{ctx.tokens.shape[0]} images')
        return dataclasses.replace(ctx, sample_idx=idx.to(ctx.tokens.device))

    def combine_terms(self, terms: Dict[str, torch.Tensor]
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Combined and sanitised weights B x L (float32, > 0) and fallback flags B (bool)."""
        first = next(iter(terms.values()))
        with torch.autocast(first.device.type, enabled=False):
            return sanitize_weights(combine_terms(list(terms.values()), self.combine), self.eps)

    def weights(self, ctx: TermContext) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`compute_terms` then :meth:`combine_terms`."""
        return self.combine_terms(self.compute_terms(ctx))

    def __repr__(self) -> str:
        return (f'FAMTWeighting(terms={self.terms}, combine={self.combine!r}, '
                f'term_args={self.term_args}, eps={self.eps})')
