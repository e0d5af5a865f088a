"""The weight terms' inputs from any mmpretrain ViT encoder, without re-implementing its blocks.

The encoder runs its own whole-image forward; hooks on its last block record what the terms
need: the input of the last block's attention (already normed), the shared relative position
bias if the block gets one (BEiT), and the block's output tokens. The CLS query's attention
row is then recomputed from that input with the attention module's own projections
(:func:`cls_attention_logits`), in float32 even under AMP.

Shapes: B images, H heads, N = 1 + L tokens (token 0 = CLS), L = h * w patches, C channels.
"""
from contextlib import contextmanager
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.utils.attention import BEiTAttention, MultiheadAttention

from .weight_terms import TermContext

__all__ = ['cls_attention_logits', 'record_last_block', 'encoder_term_context']


def _qk(attn: torch.nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """q (scaled) and k of ``attn`` for its input ``x`` (B x N x C): each B x H x N x d."""
    B, N, _ = x.shape
    if isinstance(attn, BEiTAttention):
        bias = None
        if attn.bias == 'qv_bias':  # BEiT's q / v biases with a zero k bias
            bias = torch.cat((attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias))
        elif attn.qkv.bias is not None:
            bias = attn.qkv.bias
        qkv = F.linear(x, attn.qkv.weight, bias)
        scale = attn.scale
    elif isinstance(attn, MultiheadAttention):
        qkv = attn.qkv(x)
        scale = attn.head_dims ** -0.5  # the fused path's default and qk_scale's py path alike
    else:
        raise TypeError(f'FAMT weight terms: no CLS-attention probe for {type(attn).__name__}; '
                        'supported: mmpretrain MultiheadAttention and BEiTAttention '
                        '(famt_mm/models/term_context.py)')
    q, k, _ = qkv.reshape(B, N, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    return q * scale, k


def cls_attention_logits(attn: torch.nn.Module, x: torch.Tensor,
                         rel_pos_bias: Optional[torch.Tensor] = None,
                         full: bool = False) -> torch.Tensor:
    """Pre-softmax attention logits of ``attn`` for its input ``x`` (B x N x C), float32.

    Adds BEiT's own relative position bias table and the shared bias ``rel_pos_bias``
    (H x N x N) as ``BEiTAttention.forward`` does.

    Returns:
        B x H x 1 x N (the CLS query's row), or B x H x N x N with ``full``.
    """
    q, k = _qk(attn, x)
    with torch.autocast(x.device.type, enabled=False):
        q, k = q.float(), k.float()
        logits = (q if full else q[:, :, :1]) @ k.transpose(-2, -1)
        rows = slice(None) if full else slice(0, 1)
        table = getattr(attn, 'relative_position_bias_table', None)
        if table is not None:
            n = attn.window_size[0] * attn.window_size[1] + 1
            own = table[attn.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
            logits = logits + own[:, rows].float().unsqueeze(0)
        if rel_pos_bias is not None:
            logits = logits + rel_pos_bias[..., rows, :].float()
    return logits


@contextmanager
def record_last_block(layer: torch.nn.Module):
    """Record, during one forward of the encoder, the input and shared bias of ``layer.attn``
    and the output of ``layer`` (the last transformer block). Yields the record dict with
    ``attn_input`` (B x N x C), ``rel_pos_bias`` (or None) and ``tokens`` (B x N x C)."""
    record = {}

    def before_attn(module, args, kwargs):
        record['attn_input'] = args[0]
        record['rel_pos_bias'] = kwargs.get('rel_pos_bias', args[1] if len(args) > 1 else None)

    def after_layer(module, args, output):
        record['tokens'] = output[0] if isinstance(output, (tuple, list)) else output

    handles = [layer.attn.register_forward_pre_hook(before_attn, with_kwargs=True),
               layer.register_forward_hook(after_layer)]
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def encoder_term_context(run_encoder: Callable[[torch.Tensor], object], last_layer: torch.nn.Module,
                         inputs: torch.Tensor, grid_hw: Sequence[int], patch_size: Sequence[int],
                         needs: Callable[[str], bool]) -> TermContext:
    """The :class:`TermContext` of an encoder for whole images ``inputs`` (B x 3 x H x W).

    Args:
        run_encoder: runs the encoder's own unmasked forward on ``inputs``.
        last_layer: its last transformer block (with an ``attn`` module).
        grid_hw / patch_size: the patch grid (h, w) and patch size in pixels.
        needs: the weighting's ``needs(field)`` ('attn_full', 'images').
    """
    with record_last_block(last_layer) as record:
        run_encoder(inputs)
    if 'attn_input' not in record or 'tokens' not in record:
        raise RuntimeError(f'FAMT weight terms: the encoder forward did not run its last block '
                           f'{type(last_layer).__name__}')
    x, bias = record['attn_input'], record['rel_pos_bias']
    full = needs('attn_full')
    logits = cls_attention_logits(last_layer.attn, x, bias, full=full)
    with torch.autocast(x.device.type, enabled=False):
        probs = logits.softmax(-1)
    attn_cls = probs[:, :, 0, 1:]  # B x H x L
    return TermContext(attn_cls=attn_cls, tokens=record['tokens'][:, 1:],
                       grid_hw=tuple(int(g) for g in grid_hw),
                       patch_size=tuple(int(p) for p in patch_size),
                       images=inputs if needs('images') else None,
                       attn_full=probs if full else None)
