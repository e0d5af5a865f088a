"""The file bank storage: one ``.npy`` file per refresh under the work_dir, mapped read-only.

The policy around the file format of ``bank_file.py``: where the files go
(``<work_dir>/famt_bank/bank_epoch_XXXX.<dtype>.npy``), who writes them (rank 0, once per
refresh; the other ranks hash their own copy, then every rank reads the file through and maps
it), which are kept (``keep_banks``, never the one the newest checkpoint references), what a
checkpoint stores (name, path, SHA-1) and where a resume looks for it (beside the loaded
checkpoint, in this run's work_dir, at the path it was written to). docs/design.md "The weight
bank at scale".
"""
import glob
import logging
import os
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log

from .bank_file import (BankFileError, file_checksum, open_bank_file, remove_stray_temporaries,
                        write_bank_file)
from .encoding import BANK_DTYPES, dtype_name
from .storage import BankStorage, RankRunner, maps_sha1, register_storage, run_locally

#: The folder of the work_dir (and beside a checkpoint) that holds the bank files.
BANK_SUBDIR = 'famt_bank'


def bank_file_name(epoch: int, dtype: str) -> str:
    """``bank_epoch_XXXX.<dtype>.npy``: the bank computed for ``epoch`` (0-based)."""
    return f'bank_epoch_{int(epoch):04d}.{dtype}.npy'


#: Every name :func:`bank_file_name` gives (what ``keep`` rotates).
BANK_FILE_GLOB = 'bank_epoch_*.npy'


@register_storage
class FileBankStorage(BankStorage):
    """The maps in a bank file that every process of a machine maps read-only (one copy in the
    page cache per machine); :meth:`get_rows` reads the batch's rows only.

    Args:
        work_dir (str, optional): the run's work_dir; files go to ``<work_dir>/famt_bank``
            (must be visible to every rank). None: read existing files only (:meth:`open`).
        keep (int): bank files kept (the newest; -1: all), plus the one the newest
            checkpoint (saved or resumed from) references, which is never removed.
        run_on_ranks: runs each step of a write on every rank and agrees on failure
            (``famt_mm.engine.rank_agreement.on_every_rank`` in training).
    """

    kind = 'file'
    format_version = 2  # checkpoint['famt']: bank_file, bank_path, bank_sha1, bank_dtype
    rows_on_host = True

    def __init__(self, work_dir: Optional[str] = None, keep: int = 2,
                 run_on_ranks: RankRunner = run_locally):
        self.directory = osp.join(work_dir, BANK_SUBDIR) if work_dir else None
        self.keep = keep
        self._run_on_ranks = run_on_ranks
        self._mm: Optional[np.ndarray] = None  # the read-only memmap
        self._path: Optional[str] = None
        self._sha1: Optional[str] = None  # computed when written, checked when read
        self._referenced: Optional[str] = None  # file name the newest checkpoint references

    @classmethod
    def for_run(cls, work_dir: str, keep: int, run_on_ranks: RankRunner) -> 'FileBankStorage':
        return cls(work_dir, keep, run_on_ranks)

    # -- contents ------------------------------------------------------------------------
    @property
    def filled(self) -> bool:
        return self._mm is not None

    @property
    def maps(self) -> Optional[torch.Tensor]:
        """A view of the memmap: rows are read from the page cache / disk on access."""
        if self._mm is None:
            return None
        with warnings.catch_warnings():  # read-only memmap: torch warns it is not writable
            warnings.simplefilter('ignore', UserWarning)
            return torch.from_numpy(self._mm)

    @property
    def file(self) -> Optional[str]:
        return self._path

    def write(self, maps: torch.Tensor, epoch: int) -> None:
        """Rank 0 writes the file once (hashing while writing) and the other ranks hash their
        copy; then every rank reads the file through and checks it holds its own bank (a node
        that sees a stale or torn copy stops the job, named); then rank 0 drops old files."""
        if self.directory is None:
            raise ValueError('FileBankStorage: no work_dir to write bank files to')
        rank, _ = get_dist_info()
        path = osp.join(self.directory, bank_file_name(epoch, dtype_name(maps.dtype)))

        def write_or_hash():
            if rank == 0:
                self._remove_strays()  # not while writing: only rank 0 writes, and only here
                return write_bank_file(path, maps)
            return maps_sha1(maps)

        sha1 = self._run_on_ranks(write_or_hash, f'FAMT: writing the bank file {path}')
        self._run_on_ranks(lambda: self.open(path, sha1, verify=True, shape=tuple(maps.shape)),
                           f'FAMT: reading the bank file {path}')
        if rank == 0:
            self._drop_old_files(keep=path)

    def open(self, path: str, sha1: str, verify: bool = False,
             shape: Optional[Tuple[int, ...]] = None) -> None:
        """Map the bank file at ``path`` (``write_bank_file``'s, SHA-1 ``sha1``).

        ``verify``: first read the whole file once sequentially (which fills the page cache,
        so training does not fault page by page) and check its SHA-1 against ``sha1``.
        ``shape``: the N x h x w it must hold. Raises ``BankFileError`` / ``ValueError``
        naming the file otherwise."""
        if verify:
            found, _ = file_checksum(path)
            if found != sha1:
                raise BankFileError(f'the FAMT weight bank file {path} does not hold the bank '
                                    f'just computed (SHA-1 {found[:12]}, expected {sha1[:12]}):'
                                    ' is the work_dir the same file system on every node?')
        mm = open_bank_file(path)
        if (shape is not None and tuple(mm.shape) != tuple(shape)) or mm.ndim != 3 \
                or str(mm.dtype) not in BANK_DTYPES:
            raise ValueError(f'WeightBank: the bank file {path} holds {tuple(mm.shape)} '
                             f'{mm.dtype}, expected {shape or "N x h x w"} float16 or uint8')
        self._mm, self._path, self._sha1 = mm, path, sha1

    def get_rows(self, sample_idx: torch.Tensor, device: torch.device) -> torch.Tensor:
        """One vectorised gather from the memmap into page-locked memory (the caching host
        allocator keeps the block until the copy is done), then a copy that does not block
        the host: only the batch's rows (B x h x w) leave the file."""
        idx = sample_idx.cpu().numpy()
        n = self._mm.shape[0]
        if idx.size and not 0 <= idx.min() <= idx.max() < n:
            raise IndexError(f'WeightBank.get_rows: sample_idx outside 0..{n - 1}')
        pin = device.type == 'cuda'
        rows = torch.empty((idx.size, *self._mm.shape[1:]), pin_memory=pin,
                           dtype=BANK_DTYPES[dtype_name(self._mm.dtype)])
        np.take(self._mm, idx, axis=0, out=rows.numpy(), mode='clip')  # clip: unbuffered
        return rows.to(device, non_blocking=pin)

    def checksum(self) -> str:
        return self._sha1

    # -- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict:
        """A reference to the file (a few hundred bytes)."""
        if self._mm is None:
            return dict(version=self.format_version, bank=None, bank_file=None)
        return dict(version=self.format_version, bank=None, bank_file=osp.basename(self._path),
                    bank_path=osp.abspath(self._path), bank_sha1=self._sha1,
                    bank_dtype=dtype_name(self._mm.dtype))

    def lookup_dirs(self, checkpoint: Optional[str]) -> List[str]:
        """Where a referenced file is looked for first: beside ``checkpoint``, then in this
        run's work_dir (then at the path it was written to)."""
        dirs = [osp.join(osp.dirname(str(checkpoint)), BANK_SUBDIR)] if checkpoint else []
        return dirs + ([self.directory] if self.directory else [])

    def find(self, state: dict, checkpoint: Optional[str] = None) -> Optional[str]:
        """The file ``state`` references, by :meth:`lookup_dirs`; None if nowhere."""
        for path in [osp.join(d, state['bank_file']) for d in self.lookup_dirs(checkpoint)] + [
                state['bank_path']]:
            if osp.isfile(path):
                return path
        return None

    def check(self, state: dict, shape: Tuple[int, ...],
              checkpoint: Optional[str] = None) -> Optional[str]:
        """Missing, short or corrupt (named), other shape, or bytes whose SHA-1 is not the one
        recorded when it was written: one sequential pass over the file, which also fills the
        page cache for training (docs/design.md gives the time)."""
        path = self.find(state, checkpoint)
        where = ', '.join(self.lookup_dirs(checkpoint) + [osp.dirname(state['bank_path'])])
        if path is None:
            return (f"the FAMT weight bank file {state['bank_file']} that the checkpoint "
                    f'references is missing (looked in {where})')
        try:
            sha1, found = file_checksum(path)
        except BankFileError as e:
            return str(e)
        if tuple(found) != tuple(shape):
            return (f'the FAMT weight bank file {path} holds {tuple(found)} maps, expected '
                    f'{tuple(shape)}')
        if sha1 != state['bank_sha1']:
            return (f'the FAMT weight bank file {path} has changed since the checkpoint was '
                    f"written (SHA-1 {sha1[:12]}, the checkpoint expects "
                    f"{state['bank_sha1'][:12]})")
        return None

    def restore(self, state: dict, checkpoint: Optional[str] = None) -> None:
        self.open(self.find(state, checkpoint), state['bank_sha1'])

    def referenced(self, state: dict) -> None:
        self._referenced = state.get('bank_file')  # rotation never removes it

    def restore_fix(self, problems: Sequence[str]) -> str:
        if any('is missing' in p for p in problems):
            return f'Put the file back beside the checkpoint ({BANK_SUBDIR}/)'
        return super().restore_fix(problems)

    def close(self) -> None:
        self._mm = self._path = self._sha1 = None  # the file stays: checkpoints reference it

    # -- rank 0's housekeeping -------------------------------------------------------------
    def _remove_strays(self) -> None:
        for stray in remove_stray_temporaries(self.directory):
            print_log(f'FAMT: removed {stray}, left by an interrupted bank write',
                      logger='current', level=logging.WARNING)

    def _drop_old_files(self, keep: str) -> None:
        if self.keep < 0:
            return
        files = sorted(glob.glob(osp.join(self.directory, BANK_FILE_GLOB)))
        # the file the newest checkpoint references stays, whatever keep is: a resume from
        # that checkpoint needs it
        kept = {keep, osp.join(self.directory, self._referenced or '')}
        for old in [f for f in files if f not in kept][:max(0, len(files) - self.keep)]:
            os.remove(old)
            print_log(f'FAMT: removed the old bank file {old} (keep_banks={self.keep})',
                      logger='current', level=logging.INFO)
