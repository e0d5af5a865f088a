"""FAMT sampling: from stored weight maps to masked / thrown / visible patch sets.

Plain tensor functions (no mmengine / mmcv), shared by training, the weight refresh and the
visualisation tools. The method: docs/method.md section 2.

Shapes: B images, L = h * w patches in raster order; a full-image weight map is h0 x w0.
"""
import torch
import torch.nn.functional as F

__all__ = ['split_counts', 'map_weights_to_crop', 'plackett_luce_split', 'units_to_patches',
           'pool_to_units']


def split_counts(num_patches, mask_ratio, throw_ratio):
    """Per-sample sizes of the masked, thrown and visible sets (identical for every sample).

    ``n_mask = int(L * mask_ratio)``, ``n_mask_throw = int(L * (mask_ratio + throw_ratio))``
    (docs/method.md section 2.3); ``n_throw = n_mask_throw - n_mask``, ``n_visible = L - n_mask_throw``.

    Args:
        num_patches (int): L.
        mask_ratio (float): in [0, 1).
        throw_ratio (float): in [0, 1), ``mask_ratio + throw_ratio < 1``.

    Returns:
        tuple[int, int, int]: (n_mask, n_throw, n_visible), e.g. (88, 78, 30) for L = 196,
        mask 0.45, throw 0.40.
    """
    if int(num_patches) != num_patches or num_patches <= 0:
        raise ValueError(f'num_patches must be a positive integer, got {num_patches}')
    num_patches = int(num_patches)
    for name, ratio in (('mask_ratio', mask_ratio), ('throw_ratio', throw_ratio)):
        if not 0 <= ratio < 1:
            raise ValueError(f'{name} must be in [0, 1), got {ratio}')
    if mask_ratio + throw_ratio >= 1:
        raise ValueError(f'mask_ratio + throw_ratio must be < 1 (some patches must stay '
                         f'visible), got mask_ratio={mask_ratio} + throw_ratio={throw_ratio}')
    n_mask = int(num_patches * mask_ratio)
    n_mask_throw = int(num_patches * (mask_ratio + throw_ratio))
    n_visible = num_patches - n_mask_throw
    if n_visible == 0:
        raise ValueError(f'mask_ratio={mask_ratio} + throw_ratio={throw_ratio} leaves no '
                         f'visible patch out of {num_patches}')
    if n_mask == 0:
        raise ValueError(f'mask_ratio={mask_ratio} masks no patch out of {num_patches}; '
                         f'nothing would carry the loss')
    return n_mask, n_mask_throw - n_mask, n_visible


def _overlap_matrix(start, end, n_out, n_in):
    """Area-averaging matrix of one axis.

    Output bin i covers ``[start + i * (end - start) / n_out, start + (i + 1) * ...)``, input
    cell k covers ``[k / n_in, (k + 1) / n_in)``. Entry (i, k) is their overlap length, each row
    normalised to sum 1. The parts of a bin outside [0, 1] overlap no cell, so they are simply
    ignored (the box is clipped to the image without moving the grid); a bin entirely outside
    the image (or of zero length) copies the nearest cell.

    Args:
        start, end (Tensor): B, normalised box edges along this axis.

    Returns:
        Tensor: B x n_out x n_in, float64.
    """
    # float64: boundaries that coincide in exact arithmetic must not leak 1e-7 into neighbours
    start, end = start.double(), end.double()
    dev = start.device
    edges = torch.arange(n_out + 1, device=dev, dtype=torch.float64) / n_out
    bins = start[:, None] + (end - start)[:, None] * edges  # B x (n_out + 1)
    lo, hi = bins[:, :-1, None], bins[:, 1:, None]  # B x n_out x 1
    cells = torch.arange(n_in + 1, device=dev, dtype=torch.float64) / n_in
    overlap = (torch.minimum(hi, cells[1:]) - torch.maximum(lo, cells[:-1])).clamp_min(0)
    total = overlap.sum(dim=-1, keepdim=True)
    nearest = (((lo + hi) / 2) * n_in).floor().clamp(0, n_in - 1).long().squeeze(-1)
    one_hot = F.one_hot(nearest, n_in).double()
    return torch.where(total > 0, overlap / total.clamp_min(1e-300), one_hot)


def map_weights_to_crop(maps, boxes, out_hw, flip=None, flip_direction=None):
    """Resample full-image weight maps onto the patch grid of each training crop.

    Exact area averaging (what RoIAlign approximates by sampling): with the per-axis overlap
    matrices Ry (B x h x h0) and Rx (B x w x w0) of :func:`_overlap_matrix`,
    ``out = Ry @ maps @ Rx^T``; each output cell is the area-weighted mean of the map cells
    under it. Then the flips the image received are applied.

    Args:
        maps (Tensor): B x h0 x w0 full-image weight maps; cell (i, j) covers
            ``[j / w0, (j + 1) / w0) x [i / h0, (i + 1) / h0)`` of the normalised image.
        boxes (Tensor): B x 4 crop boxes (x1, y1, x2, y2) in normalised image coordinates
            (x2, y2 exclusive). Edges may lie slightly outside [0, 1]: the part outside the
            image is ignored, the crop's grid is not moved.
        out_hw (tuple[int, int]): (h, w), the crop's patch grid.
        flip (Tensor, optional): B bool, True where the crop was flipped.
        flip_direction (Tensor, optional): B long, per-sample direction of the flip where
            ``flip`` is True: 0 horizontal (default when None), 1 vertical, 2 diagonal (both).

    Returns:
        Tensor: B x h x w, float32 (float64 maps stay float64).
    """
    if maps.dim() != 3 or boxes.shape != (maps.shape[0], 4):
        raise ValueError(f'maps must be B x h0 x w0 and boxes B x 4, got {tuple(maps.shape)} '
                         f'and {tuple(boxes.shape)}')
    if flip_direction is not None and flip is None:
        raise ValueError('flip_direction needs flip (the B bool mask of flipped crops)')
    h, w = out_hw
    h0, w0 = maps.shape[1:]
    dtype = torch.promote_types(maps.dtype, torch.float32) if maps.is_floating_point() \
        else torch.float32
    ry = _overlap_matrix(boxes[:, 1], boxes[:, 3], h, h0).to(dtype)
    rx = _overlap_matrix(boxes[:, 0], boxes[:, 2], w, w0).to(dtype)
    out = ry @ maps.to(dtype) @ rx.transpose(1, 2)
    if flip is None:
        return out
    flip = flip.to(device=out.device, dtype=torch.bool)
    if flip_direction is None:
        hflip, vflip = flip, torch.zeros_like(flip)
    else:
        direction = flip_direction.to(out.device)
        hflip = flip & ((direction == 0) | (direction == 2))
        vflip = flip & ((direction == 1) | (direction == 2))
    out = torch.where(hflip[:, None, None], out.flip(-1), out)
    return torch.where(vflip[:, None, None], out.flip(-2), out)


def plackett_luce_split(weights, n_mask, n_throw, generator=None):
    """Draw masked / thrown / visible patch ids by Plackett-Luce sampling (docs/method.md section 2.2).

    A full permutation without replacement, probability proportional to ``weights``, by the
    Gumbel-top-k trick: ``order = argsort(log w + Gumbel, descending)`` is equal in
    distribution to ``torch.multinomial(w, L, replacement=False)``. The first ``n_mask`` of the
    order are masked, the next ``n_throw`` thrown, the rest visible; each set keeps draw order.

    Args:
        weights (Tensor): B x L, positive (see ``sanitize_weights``); any per-row scale.
        n_mask (int): masked patches per sample.
        n_throw (int): thrown patches per sample.
        generator (torch.Generator, optional): must live on ``weights.device``.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``ids_masked`` B x n_mask, ``ids_thrown`` B x n_throw,
        ``ids_visible`` B x (L - n_mask - n_throw), int64, disjoint and covering 0..L-1 per row.
    """
    if weights.dim() != 2:
        raise ValueError(f'weights must be B x L, got shape {tuple(weights.shape)}')
    length = weights.shape[1]
    if n_mask < 0 or n_throw < 0 or n_mask + n_throw > length:
        raise ValueError(f'n_mask={n_mask} and n_throw={n_throw} do not fit L={length}')
    logw = torch.log(weights.float())
    u = torch.rand(weights.shape, generator=generator, device=weights.device)
    # torch.rand can return exactly 0; log(0) would give a -inf key and break ties arbitrarily
    u = u.clamp_min(torch.finfo(u.dtype).tiny)
    order = torch.argsort(logw - torch.log(-torch.log(u)), dim=1, descending=True)
    return order[:, :n_mask], order[:, n_mask:n_mask + n_throw], order[:, n_mask + n_throw:]


def units_to_patches(unit_ids: torch.Tensor, unit_grid_w: int, scale: int) -> torch.Tensor:
    """Patch ids covered by mask units ``unit_ids`` (B x K, raster order on the unit grid).

    A unit (i, j) of a grid ``unit_grid_w`` wide covers the ``scale x scale`` patches
    (i * scale + a, j * scale + b) of the patch grid, ``unit_grid_w * scale`` wide.

    Returns:
        B x (K * scale * scale), each unit's patches consecutive, in the units' order.
    """
    offs = torch.arange(scale, device=unit_ids.device)
    rows = torch.div(unit_ids, unit_grid_w, rounding_mode='floor') * scale  # B x K
    cols = unit_ids % unit_grid_w * scale
    patch_w = unit_grid_w * scale
    ids = ((rows[..., None, None] + offs[:, None]) * patch_w
           + cols[..., None, None] + offs[None, :])  # B x K x s x s
    return ids.flatten(1)


def pool_to_units(weights: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean of each unit's ``scale x scale`` patch weights: B x h x w -> B x h/s x w/s.

    The mean is the public AMT code's sum divided by s * s: the Plackett-Luce draw and the
    stored bank (each map divided by its maximum) do not change, and the values stay on
    the patch weights' scale.
    """
    return F.avg_pool2d(weights.unsqueeze(1), scale).squeeze(1)
