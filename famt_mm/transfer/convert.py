"""FAMT / MAE pre-training checkpoint -> backbone weights for a downstream library.

Every target gets exactly the keys its backbone expects, nothing else, saved as
a tensor-only ``{'state_dict': {...}}`` (loadable with ``weights_only=True``):

* ``mmpretrain``: ``VisionTransformer`` (classifiers): the pre-trained encoder
  as is: ``cls_token``, ``pos_embed`` (CLS slot first), ``patch_embed``,
  ``layers.N.*``, final norm ``ln1`` (a fine-tune with ``final_norm=False``
  says ``ignored_keys=['ln1.']`` in its init_cfg).
* ``mmseg``: mmseg's ``MAE`` backbone (UperNet recipe): as above without the
  final norm (``final_norm=False``). Its layer scales and relative position
  tables are new; the config lists them in ``allowed_missing``.
* ``mmdet``: ``ViTDetBackbone`` (famt_mm.transfer.vitdet): no CLS token, the
  CLS slot of ``pos_embed`` removed, no final norm. Its relative position
  tables are new (``allowed_missing`` in the config).

A BEiT encoder (BEiT v1 / v2 pre-training) goes to BEiT-style backbones of the same targets
instead, every weight kept (famt_mm/transfer/beit.py).

Accepted inputs: an mmengine checkpoint of a FAMT pre-training of any FAMT algorithm, or of
a plain MAE (keys ``backbone.*``), or an official MAE release (``model`` with timm keys
``blocks.N.*``). The encoder keys a FAMT algorithm declares pre-training only
(``pretrain_only_keys``, e.g. SimMIM's ``mask_token``; famt_mm/models/famt_algorithm.py) are
dropped for every target; any other key a plain ViT does not have is refused with the reason.
"""
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, Optional, Tuple

import torch

from ..models.famt_algorithm import is_pretrain_only
from .arch import describe_converted
from .beit import beit_facts, beit_for_target, is_beit_encoder
from .checkpoint import extract_state_dict, load_checkpoint_file, resize_pos_embed

#: Conversion targets by name: a function that turns the mmpretrain-named encoder (an
#: OrderedDict it may change) into the target backbone's keys. See :func:`register_target`.
_TARGET_FNS: Dict[str, Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]] = {}


def register_target(name: str):
    """Decorator: register ``fn(state) -> state`` as the conversion target ``name``."""
    def register(fn):
        if name in _TARGET_FNS:
            raise KeyError(f'conversion target {name!r} is already registered')
        _TARGET_FNS[name] = fn
        return fn
    return register


def conversion_targets() -> Tuple[str, ...]:
    """The registered targets (the converter's ``--target`` choices)."""
    return tuple(_TARGET_FNS)


@register_target('mmpretrain')
def _to_mmpretrain(state):
    return state  # the encoder as pre-trained


@register_target('mmseg')
def _to_mmseg(state):
    del state['ln1.weight'], state['ln1.bias']  # dense heads take un-normed block outputs
    return state


@register_target('mmdet')
def _to_mmdet(state):
    state = _to_mmseg(state)
    del state['cls_token']
    state['pos_embed'] = state['pos_embed'][:, 1:].contiguous()
    return state


# The keys of one pre-norm ViT block in mmpretrain's naming.
BLOCK_KEYS = ('ln1.weight', 'ln1.bias', 'attn.qkv.weight', 'attn.qkv.bias',
              'attn.proj.weight', 'attn.proj.bias', 'ln2.weight', 'ln2.bias',
              'ffn.layers.0.0.weight', 'ffn.layers.0.0.bias',
              'ffn.layers.1.weight', 'ffn.layers.1.bias')
_TOP_KEYS = ('cls_token', 'pos_embed', 'patch_embed.projection.weight',
             'patch_embed.projection.bias', 'ln1.weight', 'ln1.bias')

# Official MAE / timm names -> mmpretrain names.
_TIMM_RENAMES = (
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.', r'layers.\1.attn.'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^norm\.', 'ln1.'),
)


def _from_timm(state):
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith(('decoder', 'mask_token')):
            continue  # MAE decoder: not part of the encoder
        new = key
        for pattern, repl in _TIMM_RENAMES:
            new = re.sub(pattern, repl, new)
        out[new] = value
    return out


def pretrained_backbone(filename: str) -> 'OrderedDict[str, torch.Tensor]':
    """The encoder of a pre-training checkpoint, in mmpretrain ViT key names."""
    ckpt = load_checkpoint_file(filename)
    state = extract_state_dict(ckpt, filename)
    if any(k.startswith('backbone.') for k in state):
        # e.g. SimMIM's mask_token, MFF's proj_layers: no plain ViT has them
        backbone = OrderedDict((k[len('backbone.'):], v) for k, v in state.items()
                               if k.startswith('backbone.')
                               and not is_pretrain_only(k[len('backbone.'):]))
        backbone = fold_beit_blocks(backbone)  # CAE's BEiT-style encoder -> plain ViT blocks
    elif 'blocks.0.norm1.weight' in state:
        backbone = _from_timm(state)
    else:
        kind = describe_converted(state)
        if kind and kind.startswith('converted'):
            raise ValueError(f'{filename} is already {kind}; convert the original '
                             'pre-training checkpoint instead')
        sample = ', '.join(sorted(state)[:8])
        raise ValueError(f'{filename} has no backbone weights: expected a FAMT / MAE '
                         f'pre-training checkpoint (keys backbone.*) or an official MAE '
                         f'release (keys blocks.N.*); found keys [{sample}, ...]')
    encoder_facts(backbone, filename)
    return backbone


def fold_beit_blocks(backbone: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """BEiT-style blocks without relative position bias (CAE's encoder) as plain ViT blocks
    that compute the same function; other encoders, and any with a relative position table
    (BEiT v1 / v2: they go to BEiT-style targets), are returned as they are.

    ``attn.q_bias`` / ``attn.v_bias`` -> ``attn.qkv.bias`` = (q_bias, 0, v_bias) (BEiT's keys
    have no bias); the layer scales ``gamma_1`` / ``gamma_2`` are multiplied into
    ``attn.proj`` and the last FFN linear (``x + g * (W y + b) = x + (g W) y + g b``).
    """
    if any('relative_position_bias_table' in k for k in backbone):
        return OrderedDict(backbone)
    folded = r'(layers\.\d+\.)(attn\.q_bias|attn\.v_bias|gamma_1|gamma_2)$'
    out = OrderedDict((k, v) for k, v in backbone.items() if not re.match(folded, k))
    for key, value in backbone.items():
        m = re.match(folded, key)
        layer, name = m.groups() if m else (None, None)
        if name == 'attn.q_bias':
            v_bias = backbone[layer + 'attn.v_bias']
            out[layer + 'attn.qkv.bias'] = torch.cat((value, torch.zeros_like(v_bias), v_bias))
        elif name in ('gamma_1', 'gamma_2'):
            linear = layer + ('attn.proj' if name == 'gamma_1' else 'ffn.layers.1')
            out[linear + '.weight'] = backbone[linear + '.weight'] * value[:, None]
            out[linear + '.bias'] = backbone[linear + '.bias'] * value
    return out


def check_plain_vit(backbone: Dict[str, torch.Tensor], filename: str = '<checkpoint>') -> dict:
    """Refuse anything but a plain pre-norm ViT encoder; return its shape facts."""
    problems = [f'missing {k}' for k in _TOP_KEYS if k not in backbone]
    layer_ids = sorted({int(m.group(1)) for k in backbone
                        for m in [re.match(r'layers\.(\d+)\.', k)] if m})
    if layer_ids != list(range(len(layer_ids))) or not layer_ids:
        problems.append(f'transformer layers {layer_ids[:5]}... are not 0..N-1')
    expected = set(_TOP_KEYS) | {f'layers.{i}.{k}' for i in layer_ids for k in BLOCK_KEYS}
    problems += [f'missing {k}' for k in sorted(expected - set(backbone))
                 if k.startswith('layers.')][:5]
    extra = sorted(set(backbone) - expected)
    if extra:
        problems.append(f'keys a plain ViT does not have: {extra[:6]} (a FAMT algorithm '
                        'declares its pre-training-only encoder keys in pretrain_only_keys)')
    if not problems:
        dims = backbone['cls_token'].shape[-1]
        proj = backbone['patch_embed.projection.weight']
        tokens = backbone['pos_embed'].shape[1] - 1
        side = math.isqrt(tokens)
        qkv = backbone['layers.0.attn.qkv.weight'].shape
        if proj.dim() != 4 or proj.shape[0] != dims or proj.shape[2] != proj.shape[3]:
            problems.append(f'patch_embed.projection.weight {tuple(proj.shape)} is not a '
                            f'square {dims}-channel patch convolution')
        if side * side != tokens:
            problems.append(f'pos_embed has {tokens} patch tokens, not a square grid '
                            '(plus one CLS slot)')
        if tuple(qkv) != (3 * dims, dims):
            problems.append(f'layers.0.attn.qkv.weight {tuple(qkv)} != (3*{dims}, {dims})')
    if problems:
        raise ValueError(f'{filename}: not a plain ViT encoder (wrong architecture for these '
                         'targets): ' + '; '.join(problems))
    return dict(embed_dims=dims, num_layers=len(layer_ids), patch_size=proj.shape[-1],
                grid=side, feedforward_channels=backbone['layers.0.ffn.layers.0.0.weight'].shape[0])


def encoder_facts(backbone: Dict[str, torch.Tensor], filename: str = '<checkpoint>') -> dict:
    """A plain ViT's or a BEiT encoder's shape facts (famt_mm/transfer/beit.py); refuses
    anything else."""
    if is_beit_encoder(backbone):
        return beit_facts(backbone, filename)
    return check_plain_vit(backbone, filename)


def convert_backbone(backbone: Dict[str, torch.Tensor], target: str,
                     img_size: Optional[int] = None) -> 'OrderedDict[str, torch.Tensor]':
    """mmpretrain-named ViT encoder -> the key set of ``target``'s backbone.

    ``img_size``: resize ``pos_embed`` to that input size's patch grid now
    (otherwise ``StrictPretrained`` resizes it when loading).
    """
    if target not in _TARGET_FNS:
        raise ValueError(f'unknown target {target!r}; choose one of {conversion_targets()}')
    if is_beit_encoder(backbone):  # BEiT-style targets (famt_mm/transfer/beit.py)
        return beit_for_target(backbone, target, img_size)
    info = check_plain_vit(backbone)
    out = OrderedDict((k, v.detach().clone().contiguous()) for k, v in backbone.items())
    if img_size is not None:
        if img_size % info['patch_size']:
            raise ValueError(f'--img-size {img_size} is not a multiple of the patch size '
                             f"{info['patch_size']}")
        side = img_size // info['patch_size']
        out['pos_embed'] = resize_pos_embed(out['pos_embed'], (info['grid'],) * 2,
                                            (side, side), 1, 1)
    return _TARGET_FNS[target](out)


def refuse_same_file(src: str, dst: str) -> None:
    """Raise if writing ``dst`` would overwrite ``src`` (same path, symlink or hard link)."""
    if osp.realpath(src) == osp.realpath(dst):
        raise ValueError(f'refusing to write {dst}: it is the source checkpoint {src} '
                         f'(both resolve to {osp.realpath(src)})')
    if osp.exists(dst) and osp.exists(src):
        a, b = os.stat(src), os.stat(dst)
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
            raise ValueError(f'refusing to write {dst}: it is the source checkpoint {src} '
                             f'(a hard link: same file, inode {a.st_ino})')


def convert_checkpoint(src: str, dst: str, target: str, img_size: Optional[int] = None,
                       expect_arch: Optional[dict] = None) -> dict:
    """Read ``src``, convert for ``target``, write a tensor-only ``dst``; return facts."""
    backbone = pretrained_backbone(src)
    info = encoder_facts(backbone, src)
    if expect_arch:
        wrong = {k: (info[k], v) for k, v in expect_arch.items() if info.get(k) != v}
        if wrong:
            detail = ', '.join(f'{k}: checkpoint {a} vs expected {b}'
                               for k, (a, b) in wrong.items())
            raise ValueError(f'{src}: wrong architecture for the {target} config ({detail})')
    state = convert_backbone(backbone, target, img_size)
    refuse_same_file(src, dst)
    torch.save({'state_dict': state}, dst)
    info.update(target=target, num_tensors=len(state))
    return info
