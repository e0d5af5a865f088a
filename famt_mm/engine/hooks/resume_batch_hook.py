"""``ResumeBatchCheckHook``: a resume whose total batch differs from the run's says so.

mmengine rebuilds per-iteration schedules (``convert_to_iter_based``) from the new epoch
length when a run is resumed with another number of processes or another per-process
batch, so the learning-rate curve after the resume is not the one the run started on.
The hook records the total batch in each checkpoint and compares it at resume.
"""
from typing import Optional

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

META_KEY = 'famt_total_batch'


def train_batch(runner) -> dict:
    """{'world_size', 'batch_size', 'total', 'iters_per_epoch'} of the run being built."""
    loader = runner.train_dataloader
    world_size = get_world_size()
    return dict(world_size=world_size, batch_size=loader.batch_size,
                total=world_size * loader.batch_size, iters_per_epoch=len(loader))


def saved_batch(meta: dict) -> Optional[dict]:
    """What the checkpoint's run used; older checkpoints give only iterations per epoch."""
    if META_KEY in meta:
        return dict(meta[META_KEY])
    epoch, iteration = meta.get('epoch', 0), meta.get('iter', 0)
    if epoch and iteration and iteration % epoch == 0:
        return dict(iters_per_epoch=iteration // epoch)
    return None


def batch_change_message(before: dict, now: dict) -> Optional[str]:
    """The warning for a resume with another total batch or epoch length, else None."""
    if before.get('total', now['total']) == now['total'] and \
            before['iters_per_epoch'] == now['iters_per_epoch']:
        return None
    if 'total' in before:
        was = (f"total batch {before['total']} ({before['world_size']} processes x "
               f"{before['batch_size']}, {before['iters_per_epoch']} iterations per epoch)")
        keep = (f"resume with the run's total batch: processes x train_dataloader.batch_size "
                f"= {before['total']} (e.g. --cfg-options train_dataloader.batch_size="
                f"{max(1, before['total'] // now['world_size'])} with {now['world_size']} "
                'processes)')
    else:
        was = f"{before['iters_per_epoch']} iterations per epoch"
        keep = ('resume with the processes and train_dataloader.batch_size the run had '
                f"({before['iters_per_epoch']} iterations per epoch)")
    return (f"Resuming a run trained with {was} with total batch {now['total']} "
            f"({now['world_size']} processes x {now['batch_size']}, {now['iters_per_epoch']} "
            'iterations per epoch): mmengine re-derives the per-iteration learning-rate '
            'schedule from the new epoch length and the learning rate is not rescaled, so '
            "the curve from here on differs from the run's (and each step sees another "
            f'number of images at the same learning rate). To keep it, {keep}.')


@HOOKS.register_module()
class ResumeBatchCheckHook(Hook):
    """Record the total batch in checkpoints; warn at resume when it changed.

    tools/train.py registers it on every runner; configs may list it in ``custom_hooks``.
    """
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[META_KEY] = train_batch(runner)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:  # noqa: SLF001  (load_from of a fine-tune also lands here)
            return
        before = saved_batch(checkpoint.get('meta', {}))
        message = before and batch_change_message(before, train_batch(runner))
        if message:
            runner.logger.warning(message)
