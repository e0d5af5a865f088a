"""Test-only components that inject faults (slow steps, failing / hanging ranks, bad pixels,
unreadable samples), registered in mmpretrain's registries.

Configs reach them with ``custom_imports=dict(imports=['famt_mm',
'tests.test_engine.fault_helpers'])`` (the tools run with the repo root
on PYTHONPATH), so a ``tools/train.py`` subprocess or a torchrun job can slow down,
fail on one rank or dump its bank, exactly where a test needs it. Nothing here is
used by famt_mm itself.
"""
import os.path as osp
import time

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS, TRANSFORMS

from famt_mm.engine import FAMTWeightHook

HELPERS = 'tests.test_engine.fault_helpers'
CUSTOM_IMPORTS = dict(imports=['famt_mm', HELPERS], allow_failed_imports=False)


@HOOKS.register_module(force=True)
class FAMTTestSlowDown(Hook):
    """Sleeps after every training iteration, so a test can kill a run mid-epoch."""

    def __init__(self, seconds: float = 0.2):
        self.seconds = seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        time.sleep(self.seconds)


@HOOKS.register_module(force=True)
class FAMTTestFailOnRank(Hook):
    """Raises on ``rank`` at training iteration ``iter`` (0-based, global)."""

    def __init__(self, rank: int = 1, iter: int = 2):
        self.rank = rank
        self.iter = iter

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if get_rank() == self.rank and runner.iter == self.iter:
            raise RuntimeError(f'FAMTTestFailOnRank: injected failure on rank {self.rank} '
                               f'at iteration {self.iter}')


@HOOKS.register_module(force=True)
class FAMTTestHangOnRank(Hook):
    """Hangs (without dying) on ``rank`` at training iteration ``iter``."""

    def __init__(self, rank: int = 1, iter: int = 2):
        self.rank = rank
        self.iter = iter

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if get_rank() == self.rank and runner.iter == self.iter:
            time.sleep(3600)


@HOOKS.register_module(force=True)
class FAMTTestDumpBank(Hook):
    """Saves this rank's bank (and its checksum) to ``work_dir/famt_bank_rank{r}.pth``."""

    priority = 'LOWEST'

    def after_train(self, runner):
        hook = next(h for h in runner.hooks if isinstance(h, FAMTWeightHook))
        torch.save(dict(bank=hook.bank, bank_epoch=hook.bank_epoch,
                        refreshes=hook.refresh_epochs_done),
                   osp.join(runner.work_dir, f'famt_bank_rank{get_rank()}.pth'))


@HOOKS.register_module(force=True)
class FAMTTestDivergentBankHook(FAMTWeightHook):
    """``FAMTWeightHook`` whose gather hands rank 1 a slightly different bank."""

    def _gather_bank(self, model, idx_parts, bank_parts, num_samples):
        bank = super()._gather_bank(model, idx_parts, bank_parts, num_samples)
        if get_rank() == 1:
            bank = bank.clone()
            bank[0, 0, 0] = 0.5 * bank[0, 0, 0]
        return bank


@TRANSFORMS.register_module(force=True)
class FAMTTestSleep(BaseTransform):
    """Sleeps per sample: slows a refresh pass down enough to be interrupted."""

    def __init__(self, seconds: float = 0.05):
        self.seconds = seconds

    def transform(self, results):
        time.sleep(self.seconds)
        return results


@TRANSFORMS.register_module(force=True)
class FAMTTestHangAfter(BaseTransform):
    """Passes ``samples`` samples, then hangs (without dying): a refresh pass that a test kills
    while it is certainly inside it."""

    def __init__(self, samples: int = 2):
        self.samples = samples
        self.seen = 0

    def transform(self, results):
        self.seen += 1
        if self.seen > self.samples:
            print(f'FAMT-TEST: hanging after {self.samples} samples', flush=True)
            time.sleep(3600)
        return results


@TRANSFORMS.register_module(force=True)
class FAMTTestBadPixels(BaseTransform):
    """Float image; NaN pixels for ``nan_indices``, +inf for ``inf_indices``."""

    def __init__(self, nan_indices=(), inf_indices=()):
        self.values = {**{i: np.nan for i in nan_indices}, **{i: np.inf for i in inf_indices}}

    def transform(self, results):
        img = results['img'].astype(np.float32)
        if results['sample_idx'] in self.values:
            img[:] = self.values[results['sample_idx']]
        results['img'] = img
        return results


@TRANSFORMS.register_module(force=True)
class FAMTTestFailOnIndex(BaseTransform):
    """Raises for the samples in ``indices`` (a reader that fails on them)."""

    def __init__(self, indices=()):
        self.indices = set(indices)

    def transform(self, results):
        if results['sample_idx'] in self.indices:
            raise OSError(f"FAMTTestFailOnIndex: cannot read sample {results['sample_idx']} "
                          f'on rank {get_rank()}')
        return results
