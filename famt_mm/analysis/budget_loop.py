"""``BudgetedEpochBasedTrainLoop``: mmengine's epoch loop, stopped by a time or epoch budget.

The CPU probe experiment (docs/evaluation.md) compares methods at equal time and at equal
epochs; this loop gives both from one class, with the learning rate following the spent share
of the budget (so every run completes a whole warm-up + cosine schedule) and with encoder
snapshots at fixed shares of the budget for learning curves.
"""
import contextlib
import math
import os
import os.path as osp
import resource
import time
from typing import Optional, Sequence

import torch
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop

CLOCKS = ('cpu', 'wall')


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (loader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@LOOPS.register_module()
class BudgetedEpochBasedTrainLoop(EpochBasedTrainLoop):
    """Epoch-based training that stops when its budget is spent.

    Two budgets: ``budget_s`` seconds of ``clock`` ('cpu': this process's CPU time, which
    other jobs on a shared machine move by about 15%, not 3x; 'wall': elapsed time), or
    ``max_epochs`` whole epochs when ``budget_s`` is None. A time budget stops after the
    first iteration that ends past it; that epoch becomes the last one (hooks see
    ``max_epochs = epoch + 1``, so ``CheckpointHook`` with ``save_last`` writes it and no
    FAMT refresh follows).

    The lr of every parameter group follows the spent share p of the budget (time, or
    iterations of ``max_epochs``): linear warm-up from 1e-3 x lr over ``warmup_frac``, then
    cosine to 0 at p = 1. Leave ``param_scheduler`` unset. The clock runs from before
    ``before_train`` (data loading and FAMT's refreshes count; the model build does not).

    At each share in ``snapshot_fracs`` the encoder's state is saved to
    ``<work_dir>/snapshot_<k>.pth`` (``{'state_dict', 'meta'}``), outside the budget: the
    clock is paused while saving.

    ``stats`` after the run: seconds (of ``clock``), cpu_seconds, wall_seconds, iters, images,
    epochs (fractional), losses (per iter), snapshots (share, path, seconds, epochs).
    """

    def __init__(self, runner, dataloader, budget_s: Optional[float] = None,
                 max_epochs: int = 100000, clock: str = 'cpu', warmup_frac: float = 0.1,
                 snapshot_fracs: Sequence[float] = (), init_checkpoint: Optional[str] = None,
                 **kwargs):
        super().__init__(runner, dataloader, max_epochs=max_epochs, **kwargs)
        if budget_s is not None and budget_s <= 0:
            raise ValueError(f'BudgetedEpochBasedTrainLoop: budget_s={budget_s} must be > 0')
        if clock not in CLOCKS:
            raise ValueError(f'BudgetedEpochBasedTrainLoop: clock={clock!r}, use one of {CLOCKS}')
        if any(not 0 < f <= 1 for f in snapshot_fracs):
            raise ValueError(f'BudgetedEpochBasedTrainLoop: snapshot_fracs={snapshot_fracs} '
                             'must lie in (0, 1]')
        self.budget_s = None if budget_s is None else float(budget_s)
        self.clock = clock
        self.warmup_frac = float(warmup_frac)
        self.snapshot_fracs = sorted(float(f) for f in snapshot_fracs)
        self.init_checkpoint = init_checkpoint
        self.stats = dict(seconds=0.0, cpu_seconds=0.0, wall_seconds=0.0, iters=0, images=0,
                          epochs=0.0, losses=[], snapshots=[])
        self._paused = dict(cpu=0.0, wall=0.0)
        self._t0 = None
        self._base_lrs = None
        self._over = False

    # -- clocks ----------------------------------------------------------------
    def _now(self, clock: str) -> float:
        return cpu_seconds() if clock == 'cpu' else time.perf_counter()

    def elapsed(self, clock: Optional[str] = None) -> float:
        """Seconds of ``clock`` (default: the budget's) spent training, pauses excluded."""
        clock = clock or self.clock
        return self._now(clock) - self._t0[clock] - self._paused[clock]

    @contextlib.contextmanager
    def paused(self):
        """Work inside the block (analysis, saving) does not count against the budget."""
        start = {c: self._now(c) for c in CLOCKS}
        try:
            yield
        finally:
            for c in CLOCKS:
                self._paused[c] += self._now(c) - start[c]

    def progress(self) -> float:
        """Spent share of the budget, in [0, 1]."""
        if self.budget_s is not None:
            return min(self.elapsed() / self.budget_s, 1.0)
        return min(self._iter / max(self._max_epochs * len(self.dataloader), 1), 1.0)

    def lr_factor(self, frac: float) -> float:
        """Share of the base lr at ``frac`` of the budget."""
        frac = min(max(frac, 0.0), 1.0)
        if frac < self.warmup_frac:
            return 1e-3 + (1 - 1e-3) * frac / self.warmup_frac
        progress = (frac - self.warmup_frac) / max(1 - self.warmup_frac, 1e-12)
        return 0.5 * (1 + math.cos(math.pi * progress))

    # -- loop --------------------------------------------------------------------
    def run(self):
        if self.init_checkpoint:  # the initialised weights, outside the budget
            os.makedirs(osp.dirname(osp.abspath(self.init_checkpoint)), exist_ok=True)
            torch.save({'state_dict': self.runner.model.state_dict()}, self.init_checkpoint)
        self._t0 = {c: self._now(c) for c in CLOCKS}
        self._base_lrs = [g['lr'] for g in self.runner.optim_wrapper.param_groups]
        self.runner.call_hook('before_train')
        while not self._over and self._epoch < self._max_epochs:
            self.run_epoch()
        self.runner.call_hook('after_train')
        return self.runner.model

    def _finish(self, done: int) -> None:
        self.stats.update(seconds=self.elapsed(), cpu_seconds=self.elapsed('cpu'),
                          wall_seconds=self.elapsed('wall'),
                          epochs=self._epoch + done / len(self.dataloader))

    def run_epoch(self):
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = 0
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
            done += 1
            self._snapshot_due()
            if self.budget_s is not None and self.elapsed() >= self.budget_s:
                self._over = True
                break
        self._finish(done)
        if self._over:
            self._max_epochs = self._epoch + 1  # this epoch is the last one
            self._max_iters = self._iter
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch):
        factor = self.lr_factor(self.progress())
        for group, base in zip(self.runner.optim_wrapper.param_groups, self._base_lrs):
            group['lr'] = base * factor
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(data_batch, optim_wrapper=self.runner.optim_wrapper)
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs)
        self._iter += 1
        self.stats['iters'] += 1
        self.stats['images'] += len(data_batch['inputs'])
        self.stats['losses'].append(float(outputs['loss'].detach()))

    def _snapshot_due(self) -> None:
        taken = len(self.stats['snapshots'])
        if taken >= len(self.snapshot_fracs) or self.progress() < self.snapshot_fracs[taken]:
            return
        path = osp.join(self.runner.work_dir, f'snapshot_{taken}.pth')
        backbone = {f'backbone.{k}': v for k, v in
                    self.runner.model.backbone.state_dict().items()}
        self.stats['snapshots'].append(dict(
            frac=self.snapshot_fracs[taken], path=path, seconds=self.elapsed(),
            wall_seconds=self.elapsed('wall'),
            epochs=self._epoch + (self._iter - self._epoch_start_iter()) /
            len(self.dataloader)))
        with self.paused():  # the save is not training time
            torch.save({'state_dict': backbone, 'meta': dict(iter=self._iter)}, path)

    def _epoch_start_iter(self) -> int:
        return self._epoch * len(self.dataloader)
