"""Carrying a FAMT / MAE pre-trained encoder to mmpretrain, mmdet and mmseg.

``checkpoint``: the ``StrictPretrained`` initializer (all keys or a loud error)
and the FAMT -> target backbone converters' library functions. The mmdet and
mmseg modules live in ``famt_mm.transfer.mmdet`` / ``famt_mm.transfer.mmseg``;
their configs import them with ``custom_imports`` (importing mmdet / mmseg is
not needed for pre-training, so it is not done here).
"""
from .checkpoint import (StrictPretrainedInit, extract_state_dict,  # noqa: F401
                         load_checkpoint_file, load_strict_pretrained, match_state_dict,
                         resize_pos_embed, select_prefix)

__all__ = ['StrictPretrainedInit', 'load_strict_pretrained', 'load_checkpoint_file',
           'extract_state_dict', 'select_prefix', 'match_state_dict', 'resize_pos_embed']
