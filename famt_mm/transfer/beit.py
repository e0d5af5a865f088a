"""BEiT-style encoders (BEiT v1 / v2 pre-training) -> backbone weights of BEiT-style targets.

A BEiT encoder (mmpretrain's ``BEiTPretrainViT``) differs from a plain ViT in q / v biases,
layer scales (``gamma_1`` / ``gamma_2``) and relative position tables, and it has no absolute
position embedding by default: its positions live in the relative position bias. A plain ViT
target (``ViTDetBackbone``, mmseg's ``MAE``) would lose them, so the targets are BEiT-style and
take every weight as trained:

* ``mmpretrain``: ``BEiTViT(use_rel_pos_bias=True)`` (classification fine-tuning), with the
  final norm ``ln1`` if the pre-training had one;
* ``mmseg``: mmseg's ``BEiT`` backbone (its UperNet BEiT recipe): same key names, no final
  norm; it has no absolute position embedding, so an encoder with one is refused;
* ``mmdet``: mmpretrain's ``BEiTViT`` inside mmdet (``type='mmpretrain.BEiTViT'``,
  ``out_type='featmap'``, ``final_norm=False``) under ``SimpleFeaturePyramid``: no final norm.

The shared relative position table of the pre-training recipes (``use_shared_rel_pos_bias``)
is copied into every layer, as mmpretrain's ``BEiTViT`` does itself when it loads one.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch

__all__ = ['is_beit_encoder', 'beit_facts', 'beit_for_target']

_SHARED = 'rel_pos_bias.relative_position_'
_BLOCK = ('ln1.weight', 'ln1.bias', 'attn.q_bias', 'attn.v_bias', 'attn.qkv.weight',
          'attn.proj.weight', 'attn.proj.bias', 'ln2.weight', 'ln2.bias',
          'ffn.layers.0.0.weight', 'ffn.layers.0.0.bias', 'ffn.layers.1.weight',
          'ffn.layers.1.bias')


def is_beit_encoder(backbone: Dict[str, torch.Tensor]) -> bool:
    """Whether ``backbone`` (encoder keys, no prefix) is a BEiT-style encoder: q / v biases
    or relative position tables (a layer scale alone is a stray key of a plain ViT)."""
    return 'layers.0.attn.q_bias' in backbone or any(
        'relative_position_bias_table' in k for k in backbone)


def beit_facts(backbone: Dict[str, torch.Tensor], filename: str = '<checkpoint>') -> dict:
    """embed_dims, num_layers, patch_size, grid (side of the patch grid),
    feedforward_channels of a BEiT encoder; raises ``ValueError`` naming what is missing."""
    layers = sorted({int(m.group(1)) for k in backbone
                     for m in [re.match(r'layers\.(\d+)\.', k)] if m})
    problems = [f'missing {k}' for k in ('cls_token', 'patch_embed.projection.weight')
                if k not in backbone]
    if not layers or layers != list(range(len(layers))):
        problems.append(f'transformer layers {layers[:5]}... are not 0..N-1')
    problems += [f'missing layers.{i}.{k}' for i in layers for k in _BLOCK
                 if f'layers.{i}.{k}' not in backbone][:5]
    tables = [v for k, v in backbone.items() if k.endswith('relative_position_bias_table')]
    if not tables:
        problems.append('no relative position table (shared rel_pos_bias or per layer)')
    if problems:
        raise ValueError(f'{filename}: not a BEiT encoder: ' + '; '.join(problems))
    side = (math.isqrt(tables[0].shape[0] - 3) + 1) // 2  # (2h - 1)^2 + 3 entries
    return dict(embed_dims=int(backbone['cls_token'].shape[-1]), num_layers=len(layers),
                patch_size=int(backbone['patch_embed.projection.weight'].shape[-1]),
                grid=side, style='beit',
                feedforward_channels=int(backbone['layers.0.ffn.layers.0.0.weight'].shape[0]))


def beit_for_target(backbone: Dict[str, torch.Tensor], target: str,
                    img_size: Optional[int] = None) -> 'OrderedDict[str, torch.Tensor]':
    """The BEiT encoder ``backbone`` in the key set of ``target``'s BEiT-style backbone."""
    if img_size is not None:
        raise ValueError('--img-size: a BEiT encoder keeps its positions in relative position '
                         'tables, which the target backbone resizes itself when it loads; '
                         'leave --img-size out')
    if target not in ('mmpretrain', 'mmdet', 'mmseg'):
        raise ValueError(f'unknown target {target!r} for a BEiT encoder: mmpretrain, mmdet, '
                         'mmseg')
    facts = beit_facts(backbone)
    out = OrderedDict((k, v.detach().clone().contiguous()) for k, v in backbone.items()
                      if not k.startswith(_SHARED))
    for name in ('bias_table', 'index'):
        shared = backbone.get(_SHARED + name)
        if shared is not None:  # one table for all layers -> each layer its own copy
            for i in range(facts['num_layers']):
                out[f'layers.{i}.attn.relative_position_{name}'] = shared.detach().clone()
    if target == 'mmseg' and 'pos_embed' in out:
        raise ValueError('mmseg\'s BEiT backbone has no absolute position embedding, and this '
                         'encoder was pre-trained with one (use_abs_pos_emb=True); transfer it '
                         'through mmpretrain\'s BEiTViT (--target mmdet keys) instead')
    if target != 'mmpretrain':  # dense heads take un-normed block outputs
        out.pop('ln1.weight', None), out.pop('ln1.bias', None)
    return out
