"""Pictures of what FAMT chose: terms, weights, masked / thrown / visible, reconstruction.

``famt_panels`` computes everything for a batch of whole images with the model's
own functions (the same ones training uses); ``draw_famt_grid`` draws one row
per image with matplotlib (Agg, works headless).
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .models.famt_mae import gather_tokens
from .models.famt_sampling import plackett_luce_split, split_counts
from .models.famt_weights import (cls_attention_term, column_mean_attention_term,
                                  frequency_term, frequency_term_2d)

PANEL_TITLES = ('image', 'attention term', 'frequency term', 'combined weights',
                'masked / thrown / visible', 'reconstruction')
# Overlay colours (RGB, 0..1): masked patches red, thrown grey, visible untouched.
MASKED_RGB = np.array([0.85, 0.15, 0.15])
THROWN_RGB = np.array([0.35, 0.35, 0.35])


@torch.no_grad()
def famt_panels(model, inputs: torch.Tensor, generator: Optional[torch.Generator] = None
                ) -> Dict[str, torch.Tensor]:
    """Everything ``draw_famt_grid`` shows, for whole (un-cropped) images.

    Args:
        model: a ``FAMTMAE``.
        inputs: B x 3 x H x W, normalised by the model's data preprocessor.

    Returns:
        dict with ``attention``, ``frequency``, ``weights`` (B x h x w),
        ``flags`` (B x L: 1 masked, -1 thrown, 0 visible) and ``recon``
        (B x 3 x H x W, normalised input space, visible patches copied).
    """
    was_training = model.training
    model.eval()
    gen, grid = model.mask_generator, model.grid_hw
    attn_cls, attn_full, tokens = model.backbone.forward_famt_terms(
        inputs, column_mean=gen.attention == 'cls+column')
    attention = cls_attention_term(attn_cls)
    if gen.attention == 'cls+column':
        attention = 0.5 * (attention + column_mean_attention_term(attn_full))
    frequency = (frequency_term(tokens, gen.cutoff) if gen.frequency == '1d'
                 else frequency_term_2d(tokens, tuple(grid), gen.cutoff))
    weights, _ = gen.weights_from_terms(attn_cls, attn_full, tokens, grid)
    B, L = weights.shape
    n_mask, n_throw, _ = split_counts(L, gen.mask_ratio, gen.throw_ratio)
    ids_masked, ids_thrown, ids_visible = plackett_luce_split(weights, n_mask, n_throw, generator)
    flags = torch.zeros(B, L, dtype=torch.long, device=weights.device)
    flags.scatter_(1, ids_masked, 1)
    flags.scatter_(1, ids_thrown, -1)

    latent = model.backbone(inputs, ids_visible=ids_visible)
    pred = model.neck(latent, ids_visible, ids_masked)  # B x M x p*p*3
    head = model.head
    patches = head.patchify(inputs)  # B x L x p*p*3, un-normalised input space
    if head.norm_pix:
        # The target of a masked patch was normalised by its own statistics, which
        # a viewer does not have: use those of the visible patches instead.
        vis = gather_tokens(patches, ids_visible)
        mean = vis.mean(-1).mean(1)[:, None, None]
        std = (vis.var(-1).mean(1)[:, None, None] + 1.e-6) ** .5
        pred = pred * std + mean
    recon = torch.zeros_like(patches)
    recon.scatter_(1, ids_visible.unsqueeze(-1).expand(-1, -1, patches.shape[-1]),
                   gather_tokens(patches, ids_visible))
    recon.scatter_(1, ids_masked.unsqueeze(-1).expand(-1, -1, patches.shape[-1]), pred)
    model.train(was_training)
    hw = (B, *grid)
    return dict(attention=attention.view(hw), frequency=frequency.view(hw),
                weights=weights.view(hw), flags=flags.view(hw), recon=head.unpatchify(recon))


def to_rgb_image(inputs: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 bgr: bool = False) -> np.ndarray:
    """Normalised B x 3 x H x W -> B x H x W x 3 float RGB in [0, 1]."""
    mean = torch.as_tensor(mean, dtype=inputs.dtype).view(1, 3, 1, 1)
    std = torch.as_tensor(std, dtype=inputs.dtype).view(1, 3, 1, 1)
    img = (inputs.cpu() * std + mean).clamp(0, 255) / 255.
    if bgr:
        img = img.flip(1)
    return img.permute(0, 2, 3, 1).numpy()


def overlay_flags(image: np.ndarray, flags: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """Tint masked patches red and thrown ones grey on an H x W x 3 image."""
    H, W = image.shape[:2]
    h, w = flags.shape
    up = np.kron(flags, np.ones((H // h, W // w), dtype=flags.dtype))
    out = image.copy()
    for value, colour in ((1, MASKED_RGB), (-1, THROWN_RGB)):
        sel = up == value
        out[sel] = (1 - alpha) * out[sel] + alpha * colour
    return out


def draw_famt_grid(images: np.ndarray, panels: Dict[str, torch.Tensor], out_file: str,
                   recon_images: Optional[np.ndarray] = None,
                   titles: Optional[Sequence[str]] = None, dpi: int = 100) -> str:
    """One row per image: the six panels of ``PANEL_TITLES``. Writes a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = images.shape[0]
    cols = 6 if recon_images is not None else 5
    fig, axes = plt.subplots(n, cols, figsize=(2.2 * cols, 2.3 * n), squeeze=False)
    maps = [panels[k].float().cpu().numpy() for k in ('attention', 'frequency', 'weights')]
    flags = panels['flags'].cpu().numpy()
    for i in range(n):
        row = [images[i]] + [m[i] for m in maps] + [overlay_flags(images[i], flags[i])]
        if recon_images is not None:
            row.append(recon_images[i])
        for j, (ax, content) in enumerate(zip(axes[i], row)):
            if content.ndim == 2:
                ax.imshow(content, cmap='inferno', interpolation='nearest')
            else:
                ax.imshow(np.clip(content, 0, 1), interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(PANEL_TITLES[j], fontsize=9)
        if titles is not None:
            axes[i][0].set_ylabel(titles[i], fontsize=8)
    fig.suptitle('FAMT: red = masked (reconstructed), grey = thrown, clear = visible',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out_file, dpi=dpi)
    plt.close(fig)
    return out_file
