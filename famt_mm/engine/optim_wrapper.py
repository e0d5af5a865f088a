"""``FAMTOptimWrapper``: mmengine's ``OptimWrapper`` that skips a step whose gradients
are not finite (NaN / inf), so one bad batch does not turn every parameter into NaN.

Under AMP, ``AmpOptimWrapper``'s GradScaler already skips such steps (and lowers the
scale); this is the same guarantee for fp32 / bf16 training. Used with
``FAMTNonFiniteLossHook(action='skip')``, which counts the skipped steps and stops
after too many in a row. See docs/design.md, "Reliability".
"""
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.registry import OPTIM_WRAPPERS


def _total_norm(tensors) -> torch.Tensor:
    """L2 norm of all ``tensors`` together (NaN / inf if any element is)."""
    if hasattr(torch.nn.utils, 'get_total_norm'):  # torch >= 2.6
        return torch.nn.utils.get_total_norm(tensors)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


@OPTIM_WRAPPERS.register_module()
class FAMTOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that leaves parameters and optimizer state untouched when the
    gradients to apply hold a NaN / inf.

    Args:
        skip_nonfinite (bool): skip such steps. True.
        **kwargs: as ``OptimWrapper`` (optimizer, accumulative_counts, clip_grad).

    Attributes:
        skipped_steps (int): steps skipped so far in this process.
    """

    def __init__(self, *args, skip_nonfinite: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_nonfinite = skip_nonfinite
        self.skipped_steps = 0

    def step(self, **kwargs) -> None:
        if self.skip_nonfinite:
            grads = [p.grad for group in self.optimizer.param_groups for p in group['params']
                     if p.grad is not None]
            # The all-reduced gradients (same on every DDP rank, so all ranks skip together).
            # One host sync right before the step; mmengine's logging (RuntimeInfoHook's
            # loss.item()) already waits for every step, so this only moves the launch of
            # the optimizer kernels behind that wait (docs/design.md, Reliability).
            if grads and not bool(torch.isfinite(_total_norm(grads))):
                self.skipped_steps += 1
                return
        super().step(**kwargs)
