"""Strict loading of pre-trained weights: every key matched, or a loud error.

mmengine's ``Pretrained`` initializer (and the ViT backbones of mmseg / ViTDet,
which ignore ``prefix=``) load with ``strict=False``: a wrong file, prefix or
architecture quietly trains from scratch. ``StrictPretrained`` refuses that::

    init_cfg=dict(type='StrictPretrained', checkpoint='famt_vit-b.pth',
                  prefix='backbone.')

It reads a converted tensor-only file or a full mmengine (FAMT / MAE)
checkpoint, keeps the entries under ``prefix``, resizes ``pos_embed`` to the
module's patch grid (extra tokens such as CLS kept), and loads them with zero
missing and zero unexpected keys; otherwise it raises a ``ValueError`` naming
the keys and the file.

Order of initialisation: mmengine runs every initializer but ``Pretrained``
before the children's ``init_weights``, and ViT backbones re-draw ``pos_embed``
/ ``cls_token`` after it, which would overwrite the loaded weights. So the
module is loaded BEFORE ``init_weights`` and marked initialised (mmengine's
``is_init``), which makes ``init_weights`` leave it alone: ``StrictPretrainedHook``
does that in ``before_run`` of a training Runner (configs list it in
``custom_hooks``), :func:`load_strict_pretrained_modules` without a Runner.
Nothing of mmengine is patched.
"""
import math
from fnmatch import fnmatchcase
import os.path as osp
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseModule, is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import HOOKS, WEIGHT_INITIALIZERS
from mmengine.runner.checkpoint import CheckpointLoader

from famt_mm import compat  # noqa: F401  (mmengine reads checkpoints as data: checkpoint_io)
from famt_mm.checkpoint_io import UnsafeCheckpointError

from .arch import architecture_mismatch, describe_converted

# Where a state dict may sit inside a checkpoint, in order of preference.
_STATE_DICT_KEYS = ('state_dict', 'model', 'module')
_SHOW = 10  # keys listed per category in an error message


def _key_list(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    shown = ', '.join(keys[:_SHOW])
    more = f' ... (+{len(keys) - _SHOW} more)' if len(keys) > _SHOW else ''
    return f'[{shown}{more}]'


def load_checkpoint_file(filename: str, map_location='cpu') -> dict:
    """Read a checkpoint (local path or any mmengine-supported URI) as a dict.

    Raises ``FileNotFoundError`` for a missing local file, ``ValueError``
    for a file that is not a PyTorch checkpoint and ``UnsafeCheckpointError`` for one that
    names types outside the allow-list (famt_mm.checkpoint_io).
    """
    if '://' not in str(filename) and not osp.isfile(osp.expanduser(str(filename))):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        ckpt = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
    except (FileNotFoundError, UnsafeCheckpointError):
        raise
    except Exception as err:  # pickle / zip / unicode errors: not a checkpoint
        raise ValueError(f'{filename} is not a PyTorch checkpoint '
                         f'({type(err).__name__}: {str(err)[:200]})') from err
    if not isinstance(ckpt, dict):
        raise ValueError(f'{filename} holds a {type(ckpt).__name__}, not a checkpoint dict')
    return ckpt


def extract_state_dict(ckpt: dict,
                       filename: str = '<checkpoint>') -> 'OrderedDict[str, torch.Tensor]':
    """The tensors of a checkpoint: ``ckpt['state_dict']`` (mmengine, ours),
    ``ckpt['model']`` (official MAE / timm), or ``ckpt`` itself when it is a bare
    state dict. DDP's ``module.`` prefix is removed."""
    state = None
    for key in _STATE_DICT_KEYS:
        if isinstance(ckpt.get(key), dict):
            state = ckpt[key]
            break
    if state is None:
        if ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
            state = ckpt
        else:
            raise ValueError(
                f'{filename} has no state dict: expected one of {list(_STATE_DICT_KEYS)} '
                f'or a dict of tensors, found top-level keys {_key_list(map(str, ckpt))}')
    tensors = OrderedDict((k, v) for k, v in state.items() if torch.is_tensor(v))
    if not tensors:
        raise ValueError(f'{filename}: the state dict holds no tensors')
    if all(k.startswith('module.') for k in tensors):
        tensors = OrderedDict((k[len('module.'):], v) for k, v in tensors.items())
    return tensors


def select_prefix(state_dict: Dict[str, torch.Tensor], prefix: Optional[str],
                  filename: str = '<checkpoint>') -> 'OrderedDict[str, torch.Tensor]':
    """The entries under ``prefix`` (e.g. ``'backbone.'``), with the prefix removed."""
    if not prefix:
        return OrderedDict(state_dict)
    if not prefix.endswith('.'):
        prefix += '.'
    selected = OrderedDict(
        (k[len(prefix):], v) for k, v in state_dict.items() if k.startswith(prefix))
    if not selected:
        heads = sorted({k.split('.', 1)[0] + '.' for k in state_dict if '.' in k})
        raise ValueError(
            f'{filename} has no key starting with prefix {prefix!r}; its key prefixes are '
            f'{_key_list(heads)} (a converted backbone file needs no prefix: '
            'drop `prefix=`)')
    return selected


def _grid_of(module: torch.nn.Module, key: str, num_tokens: int) -> Tuple[Tuple[int, int], int]:
    """(h, w) patch grid and number of extra tokens of the ``pos_embed`` at ``key``."""
    owner = module
    if '.' in key:
        owner = module.get_submodule(key.rsplit('.', 1)[0])
    patch_embed = getattr(owner, 'patch_embed', None)
    hw = getattr(patch_embed, 'init_out_size', None) or getattr(owner, 'patch_grid', None)
    if hw is not None:
        h, w = int(hw[0]), int(hw[1])
        return (h, w), num_tokens - h * w
    side = math.isqrt(num_tokens)
    return (side, side), num_tokens - side * side


def resize_pos_embed(pos_embed: torch.Tensor, src_hw: Tuple[int, int], dst_hw: Tuple[int, int],
                     src_extra: int, dst_extra: int, mode: str = 'bicubic') -> torch.Tensor:
    """Resample a 1 x (extra + h*w) x C position embedding onto another grid.

    The extra (CLS) tokens are kept as they are; they are dropped when the
    target has none (``dst_extra == 0``).
    """
    if dst_extra > src_extra:
        raise ValueError(f'cannot create {dst_extra} extra position tokens from {src_extra}')
    extra, grid = pos_embed[:, :src_extra], pos_embed[:, src_extra:]
    c = grid.shape[-1]
    grid = grid.reshape(1, src_hw[0], src_hw[1], c).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=dst_hw, mode=mode, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, dst_hw[0] * dst_hw[1], c).to(pos_embed.dtype)
    return torch.cat([extra[:, :dst_extra], grid], dim=1)


def _fit_pos_embeds(module, state, target, filename):
    """Resize every ``*pos_embed`` whose token count differs from the module's."""
    for key, value in list(state.items()):
        if not (key == 'pos_embed' or key.endswith('.pos_embed')) or key not in target:
            continue
        want = target[key]
        if value.shape == want.shape or value.dim() != 3 or want.dim() != 3 \
                or value.shape[-1] != want.shape[-1]:
            continue  # equal, or a real mismatch reported by the shape check
        src_side = math.isqrt(value.shape[1])
        src_extra = value.shape[1] - src_side * src_side
        if src_extra > 1:  # not a square grid plus at most one CLS token
            src_side = math.isqrt(value.shape[1] - 1)
            src_extra = value.shape[1] - src_side * src_side
        dst_hw, dst_extra = _grid_of(module, key, want.shape[1])
        if src_extra > 1 or dst_extra < 0 or dst_extra > src_extra:
            continue
        print_log(f'StrictPretrained: resize {key} from {tuple(value.shape)} '
                  f'({src_side}x{src_side} grid) to {tuple(want.shape)} '
                  f'({dst_hw[0]}x{dst_hw[1]} grid) from {filename}', logger='current')
        state[key] = resize_pos_embed(value, (src_side, src_side), dst_hw, src_extra, dst_extra)
    return state


def _is_allowed(key: str, patterns: Tuple[str, ...]) -> bool:
    return any(key.startswith(p) or fnmatchcase(key, p) for p in patterns)


def match_state_dict(module: torch.nn.Module, state: Dict[str, torch.Tensor],
                     filename: str = '<checkpoint>', allowed_missing: Iterable[str] = (),
                     ignored_keys: Iterable[str] = ()) -> 'OrderedDict[str, torch.Tensor]':
    """Check that ``state`` fits ``module`` exactly (after resizing pos_embed).

    ``allowed_missing``: module keys that may stay at their own initialisation,
    as prefixes (``'ln2.'``: a fresh norm of a fine-tuning head) or glob
    patterns (``'layers.*.attn.rel_pos_*'``: relative position tables the
    pre-training never had).
    ``ignored_keys``: checkpoint keys (prefixes or globs) deliberately left
    out, e.g. ``'ln1.'``, the pre-training's final norm that an MAE fine-tune
    (``final_norm=False``) does not use.
    Raises ``ValueError`` listing missing / unexpected / mis-shaped keys.
    """
    target = module.state_dict()
    ignored = tuple(ignored_keys)
    dropped = [k for k in state if _is_allowed(k, ignored)]
    if ignored and not dropped:
        raise ValueError(f'{filename}: ignored_keys {list(ignored)} match no checkpoint key')
    if dropped:
        print_log(f'StrictPretrained: not loading {_key_list(dropped)} of {filename} '
                  '(ignored_keys)', logger='current')
    state = OrderedDict((k, v) for k, v in state.items() if k not in dropped)
    state = _fit_pos_embeds(module, state, target, filename)
    allowed = tuple(allowed_missing)
    missing = [k for k in target if k not in state and not _is_allowed(k, allowed)]
    unexpected = [k for k in state if k not in target]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(target[k].shape)}'
                  for k in target if k in state and state[k].shape != target[k].shape]
    if missing or unexpected or mismatched:
        lines = [f'{filename} does not fit {type(module).__name__} '
                 f'({len(state)} checkpoint tensors, {len(target)} model tensors):']
        if missing:
            lines.append(f'  missing keys ({len(missing)}): {_key_list(missing)}')
        if unexpected:
            lines.append(f'  unexpected keys ({len(unexpected)}): {_key_list(unexpected)}')
        if mismatched:
            lines.append(f'  shape mismatch ({len(mismatched)}; wrong architecture?): '
                         f'{_key_list(mismatched)}')
        arch = architecture_mismatch(state, target)
        if arch:
            lines.insert(1, f'  wrong architecture: {arch}')
        kind = describe_converted(state)
        if kind:
            lines.append(f'  The file looks {kind}.')
        lines.append('  Check the file (converted for this target with '
                     'tools/model_converters/famt2target.py --target?), `prefix=` and the '
                     'backbone arch / img_size.')
        raise ValueError('\n'.join(lines))
    return state


def load_strict_pretrained(module: torch.nn.Module, checkpoint: str,
                           prefix: Optional[str] = None, map_location='cpu',
                           allowed_missing: Iterable[str] = (),
                           ignored_keys: Iterable[str] = ()) -> 'OrderedDict[str, torch.Tensor]':
    """Load ``checkpoint`` (under ``prefix``) into ``module`` with every key matched.

    Returns the state dict actually loaded (pos_embed resized if needed).
    """
    ckpt = load_checkpoint_file(checkpoint, map_location=map_location)
    state = select_prefix(extract_state_dict(ckpt, checkpoint), prefix, checkpoint)
    state = match_state_dict(module, state, checkpoint, allowed_missing, ignored_keys)
    module.load_state_dict(state, strict=not tuple(allowed_missing))
    return state


STRICT_TYPE = 'StrictPretrained'
_LOADED = '_strict_pretrained_loaded'  # instance flag: loaded before init_weights


@WEIGHT_INITIALIZERS.register_module(name=STRICT_TYPE)
class StrictPretrainedInit:
    """``init_cfg`` initializer: load pre-trained weights, every key matched.

    mmengine runs an ``init_cfg`` (other than ``type='Pretrained'``) before the module's
    children re-initialise themselves, and ViT backbones re-draw ``pos_embed`` after it, so
    inside ``init_weights`` the loaded weights would be overwritten. The load therefore
    happens BEFORE ``init_weights``: ``StrictPretrainedHook`` (a Runner hook, in the configs'
    ``custom_hooks``) or :func:`load_strict_pretrained_modules` (without a Runner) load the
    module and mark it initialised, so that mmengine leaves it alone. Reached inside
    ``init_weights`` without either, this initializer refuses with the fix.

    Args:
        checkpoint (str): converted backbone file or full mmengine checkpoint.
        prefix (str, optional): sub-dict to take, e.g. ``'backbone.'`` for a
            FAMT / MAE pre-training checkpoint. Defaults to None (whole file).
        map_location (str): where tensors are loaded. Defaults to 'cpu'.
        allowed_missing (Sequence[str]): module keys (prefixes or glob
            patterns) that may keep the values the module was constructed with, for
            parts the pre-training never had. Defaults to () (none).
        ignored_keys (Sequence[str]): checkpoint keys (after ``prefix``;
            prefixes or glob patterns) not to load, e.g. ``['ln1.']`` for an
            MAE fine-tune without the final norm. Defaults to () (none).
    """

    def __init__(self, checkpoint, prefix=None, map_location='cpu', allowed_missing=(),
                 ignored_keys=()):
        if not checkpoint:
            raise ValueError('StrictPretrained: `checkpoint` is empty; set it, e.g. '
                             '--cfg-options model.backbone.init_cfg.checkpoint=PATH')
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location
        self.allowed_missing = tuple(allowed_missing)
        self.ignored_keys = tuple(ignored_keys)

    def __call__(self, module):
        if hasattr(module, '_params_init_info'):
            # inside init_weights: the children and the module's own init would overwrite it
            raise ValueError(
                f'StrictPretrained ({self.checkpoint}) on {type(module).__name__} was reached '
                'inside init_weights, where mmengine re-initialises the module after it. Add '
                "custom_hooks = [dict(type='StrictPretrainedHook')] to the config, or call "
                'famt_mm.transfer.load_strict_pretrained_modules(model) before '
                'model.init_weights()')
        return self.load(module)

    def load(self, module) -> 'OrderedDict[str, torch.Tensor]':
        """Load into ``module`` with every key matched; return the loaded state dict."""
        where = f' (prefix {self.prefix!r})' if self.prefix else ''
        print_log(f'StrictPretrained: load {type(module).__name__} from '
                  f'{self.checkpoint}{where}', logger='current')
        return load_strict_pretrained(module, self.checkpoint, self.prefix,
                                      self.map_location, self.allowed_missing,
                                      self.ignored_keys)


def _strict_cfg(module) -> Optional[dict]:
    """The StrictPretrained entry of ``module.init_cfg``, or None."""
    cfgs = getattr(module, 'init_cfg', None)
    cfgs = [cfgs] if isinstance(cfgs, dict) else list(cfgs or [])
    strict = [c for c in cfgs if isinstance(c, dict) and c.get('type') == STRICT_TYPE]
    if strict and len(cfgs) > 1:
        raise ValueError(f'{type(module).__name__}.init_cfg combines StrictPretrained with '
                         f'{[c.get("type") for c in cfgs if c not in strict]}: a module loaded '
                         'from a checkpoint keeps no other initialisation')
    return strict[0] if strict else None


def load_strict_pretrained_modules(model: torch.nn.Module) -> List[str]:
    """Load every submodule whose ``init_cfg`` is StrictPretrained, before ``init_weights``.

    Each such module (and everything inside it) is marked initialised (mmengine's
    ``is_init``), so a following ``model.init_weights()`` neither re-draws nor re-initialises
    it; parameters listed in ``allowed_missing`` keep the values the module was constructed
    with. Returns the names of the loaded modules ('' for ``model`` itself).
    """
    loaded = []
    for name, module in model.named_modules():
        cfg = _strict_cfg(module)
        if cfg is None or getattr(module, _LOADED, False):
            continue
        args = {k: v for k, v in cfg.items() if k != 'type'}
        state = StrictPretrainedInit(**args).load(module)
        for sub in module.modules():
            if isinstance(sub, BaseModule):
                sub.is_init = True
        module.__dict__[_LOADED] = True
        where = f'{name}: ' if name else ''
        print_log(f'StrictPretrained: {where}{type(module).__name__} holds the pre-trained '
                  f'weights ({len(state)} tensors)', logger='current')
        loaded.append(name)
    return loaded


@HOOKS.register_module()
class StrictPretrainedHook(Hook):
    """Loads the StrictPretrained modules of the model when training starts.

    ``before_run`` comes before the Runner's ``model.init_weights()``; the loaded modules are
    marked initialised, so mmengine leaves them as loaded (see
    :func:`load_strict_pretrained_modules`). ``--resume`` / ``load_from`` then load their
    checkpoint over them, as over any initialisation. Testing does not initialise weights,
    so the hook does nothing there.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        # Runner.train builds the optimizer before before_run; Runner.test / val do not
        if not isinstance(runner.optim_wrapper, (OptimWrapper, OptimWrapperDict)):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        load_strict_pretrained_modules(model)
