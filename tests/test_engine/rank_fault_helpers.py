"""Test-only faults on one rank of a torchrun job, for tests/test_engine/test_rank_agreement.py.

``FAMTTestFaults`` (a hook) reads ``FAMT_TEST_FAULT`` in ``before_run`` and, on the rank it
names, installs the fault at a real seam of that process:

* ``nan_loss:<rank>:<iter>``: the model's loss is NaN at that training iteration;
* ``refresh_raises:<rank>``: the refresh pass raises inside that rank;
* ``kill_in_bank_write:<rank>:<n>``: the n-th bank write (1-based) SIGKILLs the process after
  its first rows, leaving a partial ``.tmp`` file as a real crash would.

``FAMTTestBankDirOnRank`` is a ``FAMTWeightHook`` whose file storage, on one rank, looks for
the bank file of a resumed checkpoint in ``<work_dir>/<bank_dir>`` first (where a test put a
damaged copy): the file is unreadable on that rank only. Nothing here is used by famt_mm itself.
"""
import os
import os.path as osp
import signal

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from famt_mm.bank import FileBankStorage, file_storage, write_bank_chunks
from famt_mm.engine import FAMTWeightHook
from famt_mm.engine.hooks import famt_weight_hook
from famt_mm.engine.rank_agreement import on_every_rank

HELPERS = 'tests.test_engine.rank_fault_helpers'
CUSTOM_IMPORTS = dict(imports=['famt_mm', HELPERS], allow_failed_imports=False)


@HOOKS.register_module(force=True)
class FAMTTestFaults(Hook):
    """Installs the fault ``FAMT_TEST_FAULT`` names on the rank it names (see the module)."""

    priority = 'VERY_HIGH'

    def __init__(self):
        self.nan_iter = None

    def before_run(self, runner) -> None:
        spec = os.environ.get('FAMT_TEST_FAULT', '')
        if not spec:
            return
        kind, rank, *args = spec.split(':')
        if int(rank) != get_rank():
            return
        if kind == 'nan_loss':
            self.nan_iter = int(args[0])
        elif kind == 'refresh_raises':
            def failing_refresh_pass(*a, **k):
                raise RuntimeError(f'injected failure in the refresh of rank {rank}')
            famt_weight_hook.compute_shard_maps = failing_refresh_pass
        elif kind == 'kill_in_bank_write':
            calls, kill_at = [0], int(args[0])
            real_write = file_storage.write_bank_file

            def killed_write(path, maps):
                calls[0] += 1
                if calls[0] < kill_at:
                    return real_write(path, maps)

                def rows():
                    yield maps[:1].numpy()
                    os.kill(os.getpid(), signal.SIGKILL)  # mid-write, as a crash would
                dtype = 'float16' if maps.dtype == torch.float16 else 'uint8'
                return write_bank_chunks(path, tuple(maps.shape), dtype, rows())
            file_storage.write_bank_file = killed_write
        else:
            raise ValueError(f'FAMTTestFaults: unknown fault {spec!r}')

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.nan_iter is None or runner.iter != self.nan_iter:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        real_loss = model.loss

        def nan_loss(*args, **kwargs):
            model.loss = real_loss  # this iteration only
            return {k: v * float('nan') for k, v in real_loss(*args, **kwargs).items()}
        model.loss = nan_loss


class FirstLookIn(FileBankStorage):
    """A file storage that looks for a checkpoint's bank file in ``first_dir`` first."""

    def __init__(self, first_dir: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_dir = first_dir

    def lookup_dirs(self, checkpoint):
        return [self.first_dir] + super().lookup_dirs(checkpoint)


@HOOKS.register_module(force=True)
class FAMTTestBankDirOnRank(FAMTWeightHook):
    """On ``rank``, a resumed bank file is looked for in ``<work_dir>/<bank_dir>`` first."""

    def __init__(self, rank: int = 1, bank_dir: str = 'famt_bank_damaged', **kwargs):
        super().__init__(**kwargs)
        self.test_rank = rank
        self.test_bank_dir = bank_dir

    def _make_storage(self, runner, kind):
        if kind != 'file' or get_rank() != self.test_rank:
            return super()._make_storage(runner, kind)
        return FirstLookIn(osp.join(runner.work_dir, self.test_bank_dir), runner.work_dir,
                           self.keep_banks, on_every_rank)
