"""Tokens and patches picked by patch id: what every FAMT encoder, decoder and loss shares.

Patch ids are raster-order indices on the patch grid (row * w + column). Layouts of a patch
vector: 'pqc' (row, column, channel; ``MAEPretrainHead.patchify``'s) and 'cpq' (channel,
row, column; a Conv2d kernel's ``weight.flatten(1)``, and what ``PixelShuffle`` lays out).
"""
import torch
import torch.nn.functional as F

__all__ = ['gather_tokens', 'gather_patches', 'paste_patches', 'embed_patch_ids']


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Pick tokens ``ids`` (B x K) from ``x`` (B x L x C) -> B x K x C."""
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def _grid_view(imgs: torch.Tensor, patch_size: int, layout: str) -> torch.Tensor:
    """B x C x H x W -> B x h x w x (patch vector dims in ``layout`` order), a view."""
    B, C, H, W = imgs.shape
    p = patch_size
    grid = imgs.reshape(B, C, H // p, p, W // p, p)
    if layout == 'pqc':
        return grid.permute(0, 2, 4, 3, 5, 1)
    if layout == 'cpq':
        return grid.permute(0, 2, 4, 1, 3, 5)
    raise ValueError(f"layout {layout!r}: 'pqc' or 'cpq'")


def gather_patches(imgs: torch.Tensor, ids: torch.Tensor, patch_size: int,
                   layout: str = 'pqc') -> torch.Tensor:
    """Pixels of patches ``ids`` (B x K) of ``imgs`` (B x C x H x W) -> B x K x (p * p * C).

    Copies only the K patches, not the whole patchified batch.
    """
    grid = _grid_view(imgs, patch_size, layout)
    w = grid.shape[2]
    rows = torch.arange(imgs.shape[0], device=imgs.device).unsqueeze(1)
    patches = grid[rows, torch.div(ids, w, rounding_mode='floor'), ids % w]  # B x K x ...
    return patches.reshape(imgs.shape[0], ids.shape[1], -1)


def paste_patches(imgs: torch.Tensor, ids: torch.Tensor, patches: torch.Tensor,
                  patch_size: int, layout: str = 'pqc') -> torch.Tensor:
    """A copy of ``imgs`` (B x C x H x W) with patches ``ids`` (B x K) replaced by
    ``patches`` (B x K x (p * p * C), in ``layout`` order)."""
    out = imgs.clone()
    grid = _grid_view(out, patch_size, layout)  # a view of out: writes land in out
    w = grid.shape[2]
    rows = torch.arange(imgs.shape[0], device=imgs.device).unsqueeze(1)
    cells = torch.div(ids, w, rounding_mode='floor'), ids % w
    grid[rows, cells[0], cells[1]] = patches.to(out.dtype).reshape(
        *ids.shape, *grid.shape[3:])
    return out


def embed_patch_ids(patch_embed: torch.nn.Module, x: torch.Tensor,
                    ids: torch.Tensor) -> torch.Tensor:
    """mmcv ``PatchEmbed`` embeddings of the patches ``ids`` (B x K) of ``x`` only -> B x K x C.

    A patch embedding that is a Conv2d with kernel = stride = patch size (no norm; corner
    padding does nothing on a multiple of the patch size) is one linear map per patch:
    applied to the K gathered patches it gives the values of embedding all L patches and
    gathering K, for K / L of the work. Any other patch embedding (overlap, padding, a
    norm) embeds all patches and gathers.
    """
    proj = patch_embed.projection
    p = proj.kernel_size[0]
    if (isinstance(proj, torch.nn.Conv2d) and getattr(patch_embed, 'norm', None) is None
            and proj.kernel_size == (p, p) and proj.stride == (p, p)
            and proj.padding == (0, 0) and proj.dilation == (1, 1) and proj.groups == 1
            and x.shape[-2] % p == 0 and x.shape[-1] % p == 0):
        patches = gather_patches(x, ids, p, layout='cpq')
        return F.linear(patches, proj.weight.flatten(1), proj.bias)
    return gather_tokens(patch_embed(x)[0], ids)
