"""Layer-wise learning-rate decay for a plain ViT backbone inside any model.

mmpretrain's ``LearningRateDecayOptimWrapperConstructor`` needs a
``get_layer_depth`` method on the top-level model (mmdet / mmseg models have
none); mmseg's ``LayerDecayOptimizerConstructor`` only accepts backbones whose
class name contains 'MAE' / 'BEiT' and applies weight decay to ``pos_embed``
and ``cls_token`` (it compares un-prefixed names). This one goes by parameter
names, so it serves classifiers, detectors and segmentors alike::

    optim_wrapper = dict(
        constructor='ViTLayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.65,
                           no_decay_names=('pos_embed', 'cls_token')))

Depth of a parameter (``prefix`` = ``'backbone.'``): 0 for ``cls_token``,
``pos_embed``, ``patch_embed.*``; i + 1 for ``layers.i.*``; num_layers + 1 for
everything else (final norm, neck, heads). Its lr is
``lr * layer_decay_rate ** (num_layers + 1 - depth)``. 1-D parameters (norms,
biases, layer scales) and names ending in one of ``no_decay_names`` get no
weight decay.
"""
import re
from typing import List

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


def vit_layer_depth(name: str, num_layers: int, prefix: str = 'backbone.') -> int:
    """Depth of parameter ``name`` in a ViT with ``num_layers`` blocks (0..num_layers+1)."""
    if not name.startswith(prefix):
        return num_layers + 1
    name = name[len(prefix):]
    if name in ('cls_token', 'pos_embed', 'mask_token') or name.startswith('patch_embed.'):
        return 0
    match = re.match(r'layers\.(\d+)\.', name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ViTLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """One parameter group per (depth, decay / no decay).

    paramwise_cfg:
        num_layers (int): transformer blocks of the backbone.
        layer_decay_rate (float): lr factor per block counted from the top.
        no_decay_names (Sequence[str]): parameter name endings without
            weight decay (besides every 1-D parameter).
            Defaults to ('pos_embed', 'cls_token').
        prefix (str): where the ViT sits in the model. Defaults to 'backbone.'.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict = None):
        cfg = dict(paramwise_cfg or {})
        if 'num_layers' not in cfg or 'layer_decay_rate' not in cfg:
            raise ValueError('ViTLayerDecayOptimWrapperConstructor needs paramwise_cfg '
                             f'num_layers and layer_decay_rate, got {cfg}')
        self.num_layers = int(cfg.pop('num_layers'))
        self.layer_decay_rate = float(cfg.pop('layer_decay_rate'))
        self.no_decay_names = tuple(cfg.pop('no_decay_names', ('pos_embed', 'cls_token')))
        self.prefix = cfg.pop('prefix', 'backbone.')
        if cfg:
            raise ValueError(f'unknown paramwise_cfg keys {sorted(cfg)}')
        # a non-empty paramwise_cfg: the parent calls add_params only then
        super().__init__(optim_wrapper_cfg, dict(paramwise_cfg))

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        groups = {}
        base_wd = self.base_wd or 0.
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            depth = vit_layer_depth(name, self.num_layers, self.prefix)
            decay = not (param.ndim <= 1 or name.endswith(self.no_decay_names))
            key = (depth, decay)
            if key not in groups:
                scale = self.layer_decay_rate ** (self.num_layers + 1 - depth)
                groups[key] = dict(params=[], param_names=[], lr=self.base_lr * scale,
                                   lr_scale=scale, weight_decay=base_wd if decay else 0.,
                                   layer_depth=depth)
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        for (depth, decay), group in sorted(groups.items()):
            print_log(f'layer-wise lr decay: depth {depth} {"decay" if decay else "no decay"} '
                      f"lr_scale {group['lr_scale']:.4g}, {len(group['params'])} params",
                      logger='current', level=10)
        params.extend(group for _, group in sorted(groups.items()))
