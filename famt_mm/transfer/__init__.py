"""Carrying a FAMT / MAE pre-trained encoder to mmpretrain, mmdet and mmseg.

``checkpoint``: the ``StrictPretrained`` initializer (all keys or a loud error) and
``StrictPretrainedHook``, which loads it before the Runner's ``init_weights``;
``convert``: FAMT / MAE checkpoint -> target backbone weights (the library side
of tools/model_converters/); ``layer_decay``: layer-wise lr decay by parameter
name. ``vitdet`` (ViTDet backbone and simple feature pyramid, registered into
mmdet) is not imported here, since importing mmdet is not needed for
pre-training: the mmdet configs list it in ``custom_imports``. The mmseg
configs use mmseg's own ``MAE`` backbone.
"""
from . import layer_decay  # noqa: F401  (registers ViTLayerDecayOptimWrapperConstructor)
from .convert import convert_backbone, convert_checkpoint, pretrained_backbone  # noqa: F401
from .layer_decay import ViTLayerDecayOptimWrapperConstructor  # noqa: F401
from .checkpoint import (StrictPretrainedHook, StrictPretrainedInit,  # noqa: F401
                         extract_state_dict, load_checkpoint_file, load_strict_pretrained,
                         load_strict_pretrained_modules, match_state_dict, resize_pos_embed,
                         select_prefix)

__all__ = ['StrictPretrainedInit', 'StrictPretrainedHook', 'load_strict_pretrained',
           'load_strict_pretrained_modules', 'load_checkpoint_file',
           'extract_state_dict', 'select_prefix', 'match_state_dict', 'resize_pos_embed',
           'convert_checkpoint', 'convert_backbone', 'pretrained_backbone',
           'ViTLayerDecayOptimWrapperConstructor']
