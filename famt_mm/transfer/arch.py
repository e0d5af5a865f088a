"""Which ViT a state dict holds, in words, for "this checkpoint does not fit" messages.

``describe_vit(state)`` -> ``'ViT-T (192-d, 12 blocks, patch 8)'``: the encoder found
under any prefix (``backbone.``, none), in mmpretrain (``layers.N``) or timm / official
MAE (``blocks.N``) names. ``describe_converted(state)``: which kind of file a backbone state
dict looks like (pre-training, official MAE, converted for which target). Key names and
shapes only, no weights read. Used by both checkpoint.py (loading) and convert.py.
"""
import re
from typing import Dict, Optional

import torch

#: Width -> the usual name (ViT paper / DeiT / mmpretrain arch zoo).
VIT_NAMES = {192: 'ViT-T', 384: 'ViT-S', 768: 'ViT-B', 1024: 'ViT-L', 1280: 'ViT-H'}
_PATCH_KEYS = ('patch_embed.projection.weight', 'patch_embed.proj.weight')


def vit_facts(state: Dict[str, torch.Tensor]) -> Optional[dict]:
    """embed_dims, num_layers, patch_size of the (first, shortest-prefix) ViT encoder."""
    hits = sorted((k[:-len(s)], k) for k in state for s in _PATCH_KEYS if k.endswith(s))
    if not hits:
        return None
    prefix, key = hits[0]
    weight = state[key]
    if weight.dim() != 4:
        return None
    block = re.compile(re.escape(prefix) + r'(?:layers|blocks)\.(\d+)\.')
    layers = {int(m.group(1)) for k in state for m in [block.match(k)] if m}
    return dict(embed_dims=int(weight.shape[0]), num_layers=len(layers),
                patch_size=int(weight.shape[-1]))


def describe_vit(state: Dict[str, torch.Tensor]) -> Optional[str]:
    """``'ViT-B (768-d, 12 blocks, patch 16)'``, or None when ``state`` holds no ViT."""
    facts = vit_facts(state)
    if facts is None:
        return None
    name = VIT_NAMES.get(facts['embed_dims'], 'ViT')
    return (f"{name} ({facts['embed_dims']}-d, {facts['num_layers']} blocks, "
            f"patch {facts['patch_size']})")


def architecture_mismatch(ckpt_state: Dict[str, torch.Tensor],
                          model_state: Dict[str, torch.Tensor]) -> Optional[str]:
    """``'ViT-T checkpoint (...), ViT-B model (...)'`` when both are ViTs of another shape."""
    if vit_facts(ckpt_state) is None or vit_facts(model_state) is None \
            or vit_facts(ckpt_state) == vit_facts(model_state):
        return None
    (c_name, c_rest), (m_name, m_rest) = (
        describe_vit(s).split(' ', 1) for s in (ckpt_state, model_state))
    return f'{c_name} checkpoint {c_rest}, {m_name} model {m_rest}'


def describe_converted(state: Dict[str, torch.Tensor]) -> Optional[str]:
    """What a backbone state dict looks like, for error messages; None if unknown."""
    keys = set(state)
    if any(k.startswith('backbone.') for k in keys):
        return ('like a full pre-training checkpoint (keys backbone.*): use '
                "prefix='backbone.' or convert it with tools/model_converters/famt2target.py")
    if 'blocks.0.norm1.weight' in keys:
        return ('like an official MAE / timm checkpoint: convert it with '
                'tools/model_converters/famt2target.py')
    if 'layers.0.attn.qkv.weight' not in keys or 'pos_embed' not in keys:
        return None
    if 'cls_token' not in keys:
        return 'converted for mmdet (--target mmdet: no cls_token, no final norm)'
    if 'ln1.weight' in keys:
        return 'converted for mmpretrain (--target mmpretrain: cls_token and final norm ln1)'
    return 'converted for mmseg (--target mmseg: cls_token, no final norm)'
