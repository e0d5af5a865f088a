"""Scaffolding the FAMT algorithm tests share: data samples of whole images, a weight bank, and
mmpretrain's MAE-style ``random_masking`` made to keep given ids (MAE, MFF, EVA)."""
from typing import Optional, Sequence

import torch
from mmpretrain.structures import DataSample

from famt_mm.bank import WeightBank
from famt_mm.bank.encoding import quantize_weights


def samples(n: int):
    """``n`` data samples of whole, unflipped images (sample_idx 0..n-1)."""
    return [DataSample(metainfo=dict(sample_idx=i, famt_crop=(0.0, 0.0, 1.0, 1.0), flip=False))
            for i in range(n)]


def uniform_bank(n: int, grid_hw: Sequence[int], weights: Optional[torch.Tensor] = None):
    """A filled bank of ``n`` maps on ``grid_hw``: all ones, or ``weights`` (n x h*w)."""
    h, w = grid_hw
    maps = torch.ones(n, h * w) if weights is None else weights
    return WeightBank.from_maps(quantize_weights(maps, 'float16').view(n, h, w))


def keep_visible_masking(ids_visible: torch.Tensor, ids_masked: torch.Tensor):
    """A replacement for ``MAEViT.random_masking`` (same signature and outputs: kept tokens
    B x V x C, mask B x L with 1 = removed, ids_restore B x L) that keeps ``ids_visible``
    (B x V) and removes ``ids_masked`` (B x M), so mmpretrain's algorithm sees our split."""
    B, V = ids_visible.shape
    L = V + ids_masked.shape[1]

    def masking(tokens, mask_ratio=0.75):
        ids_restore = torch.cat([ids_visible, ids_masked], 1).argsort(1)
        mask = torch.ones(B, L, dtype=tokens.dtype)
        mask[:, :V] = 0
        kept = torch.gather(tokens, 1, ids_visible.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        return kept, torch.gather(mask, 1, ids_restore), ids_restore
    return masking
