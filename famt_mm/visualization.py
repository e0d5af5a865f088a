"""Pictures of what FAMT chose: terms, weights, masked / thrown / visible, reconstruction.

Used by ``tools/visualization/vis_famt_masks.py`` and ``FAMTVisualizationHook``.

* ``whole_image_pipeline`` / ``load_whole_images``: the images as the weight
  refresh sees them (whole, resized to the input size, no augmentation).
* ``famt_panels``: everything a row of the picture shows, computed with the
  model's own functions (the ones training uses). Any FAMT algorithm (the contract of
  famt_mm/models/famt_algorithm.py) draws its FAMT masked / thrown / visible split and, where
  its target is pixels, its reconstruction; a plain mmpretrain ``MAE`` draws its own random
  masking (and the FAMT terms its encoder would give).
* ``reconstruct_image``: MAE's predictions of the masked patches pasted between the
  visible ones, norm-pix predictions de-normalised with the visible patches'
  statistics (a viewer does not know a masked patch's own mean and variance).
* ``compose_famt_grid``: a uint8 RGB grid (numpy + OpenCV only, fixed layout:
  ``panel_box`` gives each panel's pixels), written with ``save_famt_grid`` or
  sent to mmengine's visualizer.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from .datasets.transforms import whole_image_pipeline
from .models.famt_algorithm import is_famt_model
from .models.famt_mae import reconstruct_pixels as reconstruct_image
from .models.famt_sampling import plackett_luce_split, split_counts
from .models.patch_ids import gather_tokens
from .models.term_context import encoder_term_context

__all__ = ['panel_titles', 'MASKED_RGB', 'THROWN_RGB', 'whole_image_pipeline',
           'load_whole_images', 'input_hw', 'is_famt_model', 'famt_panels',
           'reconstruct_image', 'recon_rgb', 'to_rgb_image', 'preprocessor_mean_std',
           'overlay_flags', 'compose_famt_grid', 'panel_box', 'save_famt_grid', 'draw_famt_grid']

FAMT_SPLIT_TITLE, MAE_SPLIT_TITLE = 'mask/throw/vis', 'MAE random mask'
# Overlay colours (RGB, 0..1): masked patches red, thrown grey, visible untouched.
MASKED_RGB = np.array([0.85, 0.15, 0.15])
THROWN_RGB = np.array([0.35, 0.35, 0.35])
LEGEND = 'red: masked (reconstructed)   grey: thrown   clear: visible'
# A plain MAE: its own random masking; the maps are what FAMT would use with its encoder.
MAE_LEGEND = 'red: masked by MAE (reconstructed)   clear: visible   maps: FAMT terms'

# Layout of compose_famt_grid, in pixels.
_HEADER, _FOOTER, _LABEL_W, _GAP = 22, 20, 44, 4
_MIN_TILE = 128


# -- inputs ------------------------------------------------------------------------
def input_hw(model) -> Tuple[int, int]:
    """The model's input size (H, W) in pixels: a FAMT model's ``input_hw``, a plain MAE's
    patch grid x patch size."""
    if hasattr(model, 'input_hw'):
        return tuple(model.input_hw)
    grid = model.backbone.patch_resolution
    ps = model.backbone.patch_embed.projection.kernel_size
    return int(grid[0]) * ps[0], int(grid[1]) * ps[1]


def load_whole_images(model, pipeline: Sequence[dict], dataset=None,
                      indices: Sequence[int] = (), files: Sequence[str] = (),
                      flip_channels: bool = False) -> Tuple[torch.Tensor, List[str]]:
    """A batch of whole images through ``pipeline`` and the model's data preprocessor.

    Args:
        model: the model (its ``data_preprocessor`` normalises and moves to its device).
        pipeline: transform configs, e.g. from :func:`whole_image_pipeline`.
        dataset: an mmengine dataset, read with ``get_data_info`` (its own
            pipeline is not used), for ``indices``.
        files: image files instead (``LoadImageFromFile`` is prepended).
        flip_channels: reverse the channel order of ``files`` images (BGR -> RGB)
            for configs whose preprocessor does not (``to_rgb=False``).

    Returns:
        inputs B x 3 x H x W (normalised, on the model's device) and row names.
    """
    from mmengine.dataset import Compose, default_collate
    from mmpretrain.registry import TRANSFORMS
    if files:
        compose = Compose([TRANSFORMS.build(t) for t in
                           [dict(type='LoadImageFromFile')] + list(pipeline)])
        items = [compose(dict(img_path=p, sample_idx=i)) for i, p in enumerate(files)]
        if flip_channels:
            for item in items:
                item['inputs'] = item['inputs'].flip(0)
        names = [str(p).replace('\\', '/').rsplit('/', 1)[-1] for p in files]
    else:
        compose = Compose([TRANSFORMS.build(t) for t in pipeline])
        bad = [i for i in indices if not 0 <= i < len(dataset)]
        if bad:
            raise IndexError(f'indices {bad} are outside the dataset of {len(dataset)} images')
        items = [compose(dataset.get_data_info(i)) for i in indices]
        names = [f'#{i}' for i in indices]
    data = model.data_preprocessor(default_collate(items), False)
    return data['inputs'], names


# -- what is drawn ------------------------------------------------------------------
@torch.no_grad()
def famt_panels(model, inputs: torch.Tensor, generator: Optional[torch.Generator] = None,
                seed: int = 0) -> Dict[str, torch.Tensor]:
    """Everything a row of the picture shows, for whole (un-cropped) images.

    Args:
        model: a FAMT algorithm (famt_mm/models/famt_algorithm.py; FAMT split from its
            weights, as after a refresh) or a plain mmpretrain ``MAE`` (its own random
            masking, seeded with ``seed``; the FAMT terms are those its encoder would give,
            with the default ``FAMTMaskGenerator`` settings).
        inputs: B x 3 x H x W, normalised by the model's data preprocessor.
        generator: random source of the FAMT draw.

    Returns:
        dict with ``terms`` (every weight term the mask generator selects, by name,
        B x h x w on the terms' patch grid), ``weights`` (B x h x w on the masking grid),
        ``flags`` (B x h x w on the masking grid: 1 masked, -1 thrown, 0 visible), ``recon``
        (B x 3 x H x W, input space, thrown patches zero; None where the algorithm's
        target is not pixels) and ``famt`` (bool).
    """
    was_training = model.training
    model.eval()
    try:
        if is_famt_model(model):
            return _famt_algorithm_panels(model, inputs, generator)
        return _plain_mae_panels(model, inputs, seed)
    finally:
        model.train(was_training)


def _famt_algorithm_panels(model, inputs, generator):
    gen = model.mask_generator
    ctx = model.famt_context(inputs)
    terms = gen.weighting.compute_terms(ctx)
    weights = model.compute_famt_weights(inputs)[0].flatten(1)  # on the masking grid
    B, L = weights.shape
    n_mask, n_throw, _ = split_counts(L, gen.mask_ratio, gen.throw_ratio)
    units = plackett_luce_split(weights, n_mask, n_throw, generator)
    recon = model.famt_reconstruct(inputs, model.split_from_units(units))
    flags = _flags(B, L, units[0], units[1], weights.device)
    hw = (B, *model.grid_hw)
    return dict(terms={k: v.view(B, *ctx.grid_hw) for k, v in terms.items()},
                weights=weights.view(hw), flags=flags.view(hw), recon=recon, famt=True)


def _plain_mae_panels(model, inputs, seed):
    from mmpretrain.registry import MODELS
    gen = MODELS.build(dict(type='FAMTMaskGenerator'))
    backbone = model.backbone
    grid = tuple(int(g) for g in backbone.patch_resolution)
    ctx = encoder_term_context(lambda x: backbone(x, None), backbone.layers[-1], inputs, grid,
                               backbone.patch_embed.projection.kernel_size,
                               gen.weighting.needs)
    terms = gen.weighting.compute_terms(ctx)
    weights = gen.weighting.combine_terms(terms)[0]
    B, L = weights.shape
    # mmpretrain's own MAE path: MAEViT.random_masking (global RNG, seeded here).
    devices = [inputs.device] if inputs.is_cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        latent, mask, ids_restore = backbone(inputs)
    pred_all = model.neck(latent, ids_restore)  # B x L x p*p*3, patch order
    order = torch.argsort(mask, dim=1, stable=True)  # kept (0) first, then removed (1)
    n_keep = int((mask[0] == 0).sum())
    ids_visible, ids_masked = order[:, :n_keep], order[:, n_keep:]
    pred = gather_tokens(pred_all, ids_masked)
    recon = reconstruct_image(model.head, inputs, pred, ids_masked, ids_visible)
    flags = _flags(B, L, ids_masked, ids_masked[:, :0], weights.device)
    hw = (B, *grid)
    return dict(terms={k: v.view(B, *ctx.grid_hw) for k, v in terms.items()},
                weights=weights.view(hw), flags=flags.view(hw), recon=recon, famt=False)


def _flags(B: int, L: int, masked: torch.Tensor, thrown: torch.Tensor, device) -> torch.Tensor:
    """B x L: 1 at ``masked``, -1 at ``thrown``, 0 elsewhere (visible)."""
    flags = torch.zeros(B, L, dtype=torch.long, device=device)
    flags.scatter_(1, masked, 1)
    flags.scatter_(1, thrown, -1)
    return flags


def recon_rgb(panels: Dict[str, torch.Tensor], mean: Sequence[float],
              std: Sequence[float]) -> Optional[np.ndarray]:
    """The reconstruction panel's RGB images, or None where the algorithm has none."""
    recon = panels.get('recon')
    return None if recon is None else to_rgb_image(recon, mean, std)


# -- drawing ------------------------------------------------------------------------
def panel_titles(term_names: Sequence[str], famt: bool = True,
                 recon: bool = True) -> Tuple[str, ...]:
    """Column titles: the image, one map per weight term, the weights, the split, the
    reconstruction (where drawn)."""
    return ('image', *term_names, 'weights', FAMT_SPLIT_TITLE if famt else MAE_SPLIT_TITLE,
            *(('reconstruction', ) if recon else ()))


def to_rgb_image(inputs: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 bgr: bool = False) -> np.ndarray:
    """Normalised B x 3 x H x W -> B x H x W x 3 float RGB in [0, 1]."""
    inputs = inputs.detach().float().cpu()
    mean = torch.as_tensor(mean, dtype=inputs.dtype).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=inputs.dtype).view(1, -1, 1, 1)
    img = (inputs * std + mean).clamp(0, 255) / 255.
    if bgr:
        img = img.flip(1)
    return img.permute(0, 2, 3, 1).numpy()


def preprocessor_mean_std(model) -> Tuple[List[float], List[float]]:
    """Mean and std the model's data preprocessor normalises with (identity if none)."""
    pre = model.data_preprocessor
    if not getattr(pre, '_enable_normalize', False):
        return [0., 0., 0.], [1., 1., 1.]
    return pre.mean.flatten().tolist(), pre.std.flatten().tolist()


def _upsample(grid_map: np.ndarray, H: int, W: int) -> np.ndarray:
    """h x w -> H x W, each cell a block (H, W multiples of h, w)."""
    h, w = grid_map.shape[:2]
    if H % h or W % w:
        raise ValueError(f'image {H}x{W} is not a whole number of {h}x{w} patches')
    return np.repeat(np.repeat(grid_map, H // h, axis=0), W // w, axis=1)


def overlay_flags(image: np.ndarray, flags: np.ndarray, alpha: float = 0.65,
                  show_masked: bool = True) -> np.ndarray:
    """Tint masked patches red and thrown ones grey on an H x W x 3 float image.

    Args:
        flags: h x w, 1 masked, -1 thrown, 0 visible.
        alpha: tint strength (1 paints the colour).
        show_masked: False leaves masked patches untouched (reconstruction panel).
    """
    up = _upsample(np.asarray(flags), *image.shape[:2])
    out = image.astype(np.float64, copy=True)
    tints = [(-1, THROWN_RGB)] + ([(1, MASKED_RGB)] if show_masked else [])
    for value, colour in tints:
        sel = up == value
        out[sel] = (1 - alpha) * out[sel] + alpha * colour
    return out


def _colour_map(values: np.ndarray) -> np.ndarray:
    """h x w map -> h x w x 3 RGB in [0, 1] (inferno, min-max per map)."""
    v = values.astype(np.float64)
    lo, hi = np.nanmin(v), np.nanmax(v)
    v = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    grey = np.round(np.nan_to_num(v) * 255).astype(np.uint8)
    return cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO)[..., ::-1] / 255.


def _tile_scale(H: int) -> int:
    return max(1, math.ceil(_MIN_TILE / H))


def panel_box(row: int, col: int, img_hw: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Pixel box (y0, y1, x0, x1) of panel (row, col) in ``compose_famt_grid``'s output."""
    s = _tile_scale(img_hw[0])
    th, tw = img_hw[0] * s, img_hw[1] * s
    y0 = _HEADER + row * (th + _GAP)
    x0 = _LABEL_W + col * (tw + _GAP)
    return y0, y0 + th, x0, x0 + tw


def _put_text(canvas, text, x, y, scale=0.4, colour=(0, 0, 0)):
    cv2.putText(canvas, text, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1,
                cv2.LINE_AA)


def compose_famt_grid(images: np.ndarray, panels: Dict[str, torch.Tensor],
                      recon_images: Optional[np.ndarray] = None,
                      names: Optional[Sequence[str]] = None,
                      titles: Optional[Sequence[str]] = None,
                      legend: Optional[str] = None) -> np.ndarray:
    """One row per image: image, one map per weight term, the weights, the split, the
    reconstruction.

    Args:
        images: B x H x W x 3 float RGB in [0, 1] (see :func:`to_rgb_image`).
        panels: output of :func:`famt_panels`.
        recon_images: B x H x W x 3 RGB of ``panels['recon']`` (optional column).
        names: row labels.

    Returns:
        uint8 RGB image. Panels are scaled by an integer factor (nearest, so patch
        borders stay sharp); :func:`panel_box` locates each one.
    """
    famt = bool(panels.get('famt', True))
    titles = titles or panel_titles(list(panels['terms']), famt, recon_images is not None)
    legend = legend or (LEGEND if famt else MAE_LEGEND)
    B, H, W = images.shape[:3]
    maps = [m.float().cpu().numpy() for m in panels['terms'].values()]
    maps.append(panels['weights'].float().cpu().numpy())
    cols = len(maps) + 2 + (recon_images is not None)
    s = _tile_scale(H)
    th, tw = H * s, W * s
    height = _HEADER + B * th + (B - 1) * _GAP + _FOOTER
    width = _LABEL_W + cols * tw + (cols - 1) * _GAP
    width = max(width, 8 * len(legend) + 8)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    flags = panels['flags'].cpu().numpy()
    for i in range(B):
        row = [images[i]] + [_upsample(_colour_map(m[i]), H, W) for m in maps]
        row.append(overlay_flags(images[i], flags[i]))
        if recon_images is not None:
            row.append(overlay_flags(recon_images[i], flags[i], alpha=1.0, show_masked=False))
        for j, content in enumerate(row):
            y0, y1, x0, x1 = panel_box(i, j, (H, W))
            tile = np.round(np.clip(content, 0, 1) * 255).astype(np.uint8)
            canvas[y0:y1, x0:x1] = np.repeat(np.repeat(tile, s, axis=0), s, axis=1)
        if names is not None:
            y0, y1 = panel_box(i, 0, (H, W))[:2]
            _put_text(canvas, str(names[i])[:6], 2, (y0 + y1) / 2 + 4)
    for j in range(cols):
        x0 = panel_box(0, j, (H, W))[2]
        _put_text(canvas, titles[j], x0 + 2, _HEADER - 7)
    _put_text(canvas, legend, 4, height - 6)
    return canvas


def save_famt_grid(grid: np.ndarray, out_file: str) -> str:
    """Write an RGB uint8 grid as PNG."""
    if not cv2.imwrite(out_file, np.ascontiguousarray(grid[..., ::-1])):
        raise OSError(f'could not write {out_file}')
    return out_file


def draw_famt_grid(images: np.ndarray, panels: Dict[str, torch.Tensor], out_file: str,
                   recon_images: Optional[np.ndarray] = None,
                   titles: Optional[Sequence[str]] = None) -> str:
    """:func:`compose_famt_grid` written to ``out_file`` (PNG); ``titles`` label the rows."""
    return save_famt_grid(compose_famt_grid(images, panels, recon_images, names=titles),
                          out_file)
