"""Hooks of the CPU probe experiment (docs/evaluation.md): object focus of every FAMT refresh,
and the uniform-weight control that trains with FAMT's token budget."""
import contextlib
from typing import List, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from famt_mm.bank import WeightBank, dequantize_weights, quantize_weights


def _model(runner):
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def _off_the_clock(runner):
    """The budgeted loop's pause (analysis work is not training time), else a no-op."""
    pause = getattr(runner.train_loop, 'paused', None)
    return pause() if pause is not None else contextlib.nullcontext()


def object_covers(dataset, grid_hw) -> torch.Tensor:
    """N x h x w share of every patch covered by its image's object (``SyntheticObjects``)."""
    if not hasattr(dataset, 'patch_object_fraction'):
        raise TypeError(f'object focus needs per-image object masks; {type(dataset).__name__} '
                        'has no patch_object_fraction (use SyntheticObjects)')
    return torch.from_numpy(np.stack([dataset.patch_object_fraction(i, tuple(grid_hw))
                                      for i in range(len(dataset))]))


def bank_object_focus(bank: torch.Tensor, covers: torch.Tensor) -> dict:
    """How much of each weight map lies on its object, against the object's area.

    Args:
        bank: N x h x w weight maps (quantised as by ``quantize_weights``, or float).
        covers: N x h x w object coverage of each patch, in [0, 1].
    Returns:
        weight_on_object: mean over images of sum(w * c) / sum(w); object_area: mean of
        mean(c); lift: their ratio (1 for uniform weights); images.
    """
    w = (dequantize_weights(bank) if not bank.is_floating_point() or bank.dtype == torch.float16
         else bank).double().flatten(1)
    c = covers.double().flatten(1)
    share = (w * c).sum(1) / w.sum(1)
    area = c.mean(1)
    ws, ar = float(share.mean()), float(area.mean())
    return dict(weight_on_object=ws, object_area=ar, lift=ws / ar, images=int(w.shape[0]))


@HOOKS.register_module()
class FAMTFocusHook(Hook):
    """Records the object focus of every FAMT weight refresh (after ``FAMTWeightHook``).

    ``records`` gets one dict per refresh: epoch, refresh_seconds (as the weight hook logged
    it) and :func:`bank_object_focus` of the new bank. The work is done off the budgeted
    loop's clock.
    """

    priority = 'LOW'  # after FAMTWeightHook (NORMAL) in before_train_epoch

    def __init__(self):
        self.records: List[dict] = []
        self._covers: Optional[torch.Tensor] = None
        self._seen = None

    def before_train_epoch(self, runner) -> None:
        weight_hook = next((h for h in runner.hooks if type(h).__name__ == 'FAMTWeightHook'),
                           None)
        if weight_hook is None or weight_hook.bank is None:
            return
        if weight_hook.bank_epoch == self._seen:
            return
        self._seen = weight_hook.bank_epoch
        with _off_the_clock(runner):
            if self._covers is None:
                self._covers = object_covers(runner.train_dataloader.dataset,
                                             _model(runner).grid_hw)
            rec = dict(epoch=weight_hook.bank_epoch,
                       refresh_seconds=runner.message_hub.get_info('famt/refresh_seconds'),
                       **bank_object_focus(weight_hook.bank, self._covers))
            self.records.append(rec)
            runner.logger.info(f'FAMT focus at epoch {rec["epoch"]}: '
                               f'{100 * rec["weight_on_object"]:.1f}% of the weight on object '
                               f'patches covering {100 * rec["object_area"]:.1f}% of the area '
                               f'(lift {rec["lift"]:.2f})')


@HOOKS.register_module()
class UniformFAMTBankHook(Hook):
    """The control: FAMT's masking and throwing from ``start_epoch`` on, with uniform weights.

    Gives the mask generator a bank of equal weights (the same Plackett-Luce draw and crop
    mapping as FAMT, so every patch is equally likely: random masking at FAMT's mask / throw
    ratios) and switches it to the FAMT phase from ``start_epoch``. No refresh pass. Use
    instead of ``FAMTWeightHook``.
    """

    priority = 'NORMAL'

    def __init__(self, start_epoch: int = 0):
        if not isinstance(start_epoch, int) or start_epoch < 0:
            raise ValueError(f'UniformFAMTBankHook: start_epoch={start_epoch} must be an int >= 0')
        self.start_epoch = start_epoch

    def before_train(self, runner) -> None:
        model = _model(runner)
        if not hasattr(model, 'mask_generator'):
            raise TypeError('UniformFAMTBankHook needs a FAMTMAE model (with a mask_generator)')
        if any(type(h).__name__ == 'FAMTWeightHook' for h in runner.hooks):
            raise ValueError('UniformFAMTBankHook replaces FAMTWeightHook; remove one of them')
        h, w = model.grid_hw
        n = len(runner.train_dataloader.dataset)
        gen = model.mask_generator
        gen.set_bank(WeightBank.from_maps(quantize_weights(torch.ones(n, h, w), gen.bank_dtype)))
        gen.hook_attached = True  # this hook stands in for FAMTWeightHook (models/hook_guard.py)

    def before_train_epoch(self, runner) -> None:
        _model(runner).mask_generator.famt_active = runner.epoch >= self.start_epoch
