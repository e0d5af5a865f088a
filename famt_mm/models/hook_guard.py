"""A FAMT model refuses to train without ``FAMTWeightHook`` (it would train as plain MAE).

The hook marks the model's ``FAMTMaskGenerator`` in ``before_train``; the training
forward (``mode='loss'``: what ``train_step`` and ``MMDistributedDataParallel`` call)
checks the mark, so the error comes at the first iteration of any Runner-driven
training, while tests that call ``model.loss`` directly are unaffected.
"""

HOOK_MISSING = (
    '{model} is training without FAMTWeightHook: nothing would compute the weight bank '
    'or switch from random to FAMT masking, so every epoch would train as plain MAE. '
    "Most likely a derived config set its own `custom_hooks`, which replaces the base "
    "config's list (mmengine merges dicts but replaces lists). Fix: add "
    "dict(type='FAMTWeightHook', start_epoch=..., interval=...) to custom_hooks, or keep "
    "the base's hooks with `custom_hooks = _base_.custom_hooks + [...]`")


class FAMTHookRequiredMixin:
    """Put first in the bases of a FAMT model (``class FAMTMAE(FAMTHookRequiredMixin, MAE)``)
    that has a ``mask_generator`` (``FAMTMaskGenerator``)."""

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss' and not getattr(self.mask_generator, 'hook_attached', False):
            raise RuntimeError(HOOK_MISSING.format(model=type(self).__name__))
        return super().forward(inputs, data_samples, mode=mode)
