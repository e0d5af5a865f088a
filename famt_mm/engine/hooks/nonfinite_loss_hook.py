"""``FAMTNonFiniteLossHook``: a NaN / inf training loss stops the run with a message,
or its step is skipped and counted, and too many in a row stop the run.

Detection costs nothing: mmengine's ``RuntimeInfoHook`` (priority VERY_HIGH) already
turns each iteration's loss into a Python float for the log (its host sync); this hook
reads that float. In a distributed run the ranks then agree (one all-reduce of a flag per
iteration, ``famt_mm.engine.rank_agreement``): a NaN on one rank stops or skips on every rank
alike, so no rank waits in the next step's collectives for one that stopped. See
docs/design.md, "Reliability".
"""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ..rank_agreement import rank_codes

ACTIONS = ('stop', 'skip')


def amp_loss_scale(optim_wrapper) -> Optional[float]:
    """The current AMP loss scale of ``optim_wrapper`` (AmpOptimWrapper), else None."""
    scaler = getattr(optim_wrapper, 'loss_scaler', None)
    if scaler is None or not scaler.is_enabled():
        return None
    return float(scaler.get_scale())


def skips_nonfinite_steps(optim_wrapper) -> bool:
    """Whether ``optim_wrapper`` leaves the parameters alone on non-finite gradients."""
    return (getattr(optim_wrapper, 'skip_nonfinite', False)
            or amp_loss_scale(optim_wrapper) is not None)  # GradScaler skips inf / NaN


@HOOKS.register_module()
class FAMTNonFiniteLossHook(Hook):
    """Watch the training loss for NaN / inf.

    Args:
        action (str): 'stop' (raise at the first non-finite loss, naming the iteration,
            the loss, the AMP loss scale and the last checkpoint) or 'skip' (the step
            is skipped by the optimizer wrapper, logged and counted; the run goes on).
            'skip' needs ``optim_wrapper=dict(type='FAMTOptimWrapper', ...)`` or
            ``AmpOptimWrapper`` (their steps leave parameters alone on NaN / inf).
        max_consecutive (int): with 'skip', stop after this many bad steps in a row. 5.
    """

    # after RuntimeInfoHook (VERY_HIGH) stored the loss, before logging and checkpointing
    priority = 'ABOVE_NORMAL'

    def __init__(self, action: str = 'stop', max_consecutive: int = 5):
        if action not in ACTIONS:
            raise ValueError(f'FAMTNonFiniteLossHook: action={action!r}, use one of {ACTIONS}')
        if not isinstance(max_consecutive, int) or max_consecutive < 1:
            raise ValueError(f'FAMTNonFiniteLossHook: max_consecutive={max_consecutive} must '
                             'be an int >= 1')
        self.action = action
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.skipped = 0
        self._wrapper_skips = 0

    def before_train(self, runner) -> None:
        if self.action == 'skip' and not skips_nonfinite_steps(runner.optim_wrapper):
            raise ValueError(
                f"FAMTNonFiniteLossHook(action='skip'): {type(runner.optim_wrapper).__name__} "
                'applies NaN / inf gradients to the parameters; use '
                "optim_wrapper=dict(type='FAMTOptimWrapper', ...) (or AmpOptimWrapper on a "
                "GPU), or action='stop'")
        self._wrapper_skips = getattr(runner.optim_wrapper, 'skipped_steps', 0)

    def _report(self, runner, loss: float, ranks) -> str:
        scale = amp_loss_scale(runner.optim_wrapper)
        last = runner.message_hub.get_info('last_ckpt')
        return (f'non-finite loss {_where(runner, loss, ranks)} at iteration {runner.iter + 1} '
                f'(epoch {runner.epoch + 1}), ' + (f'AMP loss scale {scale:g}' if scale is not None
                                             else 'no AMP') + '; last checkpoint: ' +
                (f'{last} (resume with --resume {last} after lowering the learning rate or '
                 'fixing the data)' if last else 'none saved yet'))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # A Python float already: RuntimeInfoHook called .item() on it (no extra host sync).
        loss = runner.message_hub.get_scalar('train/loss').current()
        wrapper_skips = getattr(runner.optim_wrapper, 'skipped_steps', 0)
        # per rank: 2 = non-finite loss, 1 = the optimizer wrapper skipped the step (NaN / inf
        # gradients, e.g. another rank's NaN averaged in by DDP), 0 = fine
        codes = rank_codes(2 * (not math.isfinite(loss)) + (wrapper_skips != self._wrapper_skips))
        self._wrapper_skips = wrapper_skips
        ranks = [r for r, c in enumerate(codes) if c >= 2] or [r for r, c in enumerate(codes)
                                                                  if c]
        if not ranks:  # the same answer on every rank: all go on, skip or stop together
            self.consecutive = 0
            return
        self.consecutive += 1
        if self.action == 'stop':
            raise RuntimeError(f'FAMTNonFiniteLossHook: {self._report(runner, loss, ranks)}')
        self.skipped += 1
        runner.message_hub.update_info('famt/nonfinite_skipped', self.skipped)
        if self.consecutive >= self.max_consecutive:
            raise RuntimeError(
                f'FAMTNonFiniteLossHook: {self.consecutive} non-finite steps in a row '
                f'(max_consecutive={self.max_consecutive}), stopping: the run diverged. '
                f'Last one: {self._report(runner, loss, ranks)}')
        runner.logger.warning(
            f'FAMTNonFiniteLossHook: non-finite loss {_where(runner, loss, ranks)} at '
            f'iteration {runner.iter + 1}: '
            f'step skipped, parameters unchanged ({self.skipped} skipped so far, '
            f'{self.consecutive} in a row; stop at {self.max_consecutive})')


def _where(runner, loss: float, ranks) -> str:
    """The loss, and in a distributed run which ranks had a non-finite one."""
    if runner.world_size == 1:
        return f'{loss}'
    return f'on rank(s) {ranks} (this rank, {runner.rank}: {loss})'
