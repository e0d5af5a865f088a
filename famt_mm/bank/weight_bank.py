"""``WeightBank``: the N x h x w sampling-weight maps of a training set and their checkpoint format.

Row ``i`` is the map of the image with dataset index (``sample_idx``) ``i``, quantised by
``famt_mm.models.famt_weights.quantize_weights`` (float16: 2 bytes per cell, uint8: 1 byte).
See docs/method.md section 6 (the bank) and docs/design.md (its place in the code).
"""
import hashlib
import os.path as osp
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from .bank_file import BankFileError, file_checksum, open_bank_file

#: Version of the ``checkpoint['famt']`` layout written by :meth:`WeightBank.state_dict`:
#: 1 holds the maps inline, 2 references a bank file by name and SHA-1 (both are read).
BANK_FORMAT_VERSION = 1
BANK_FILE_FORMAT_VERSION = 2

#: Storage dtypes of a bank, by the name a config uses (``FAMTMaskGenerator.bank_dtype``).
BANK_DTYPES = {'float16': torch.float16, 'uint8': torch.uint8}


class WeightBank:
    """One quantised weight map per training image, indexed by dataset index.

    Two storages behind the same methods: inline (:meth:`set_all`: one CPU tensor per
    process, plus a copy on the training device made on the first :meth:`get_rows` after each
    refresh; small datasets) and file (:meth:`set_file`: a read-only memmap of the bank file
    of ``famt_mm.bank.bank_file``, shared by every process of a machine through the page
    cache; :meth:`get_rows` reads the batch's rows only). docs/design.md "The weight bank at
    scale".

    Args:
        num_samples (int): N, the training-set size.
        grid_hw (tuple[int, int]): (h, w), the model's masking grid (``model.grid_hw``).
        dtype (str): 'float16' or 'uint8' (see :data:`BANK_DTYPES`): the dtype until maps
            are set (:meth:`set_all` takes theirs).
    """

    def __init__(self, num_samples: int, grid_hw: Sequence[int], dtype: str = 'float16'):
        if dtype not in BANK_DTYPES:
            raise ValueError(f'WeightBank: dtype {dtype!r} not in {tuple(BANK_DTYPES)}')
        self.num_samples = int(num_samples)
        self.grid_hw: Tuple[int, int] = (int(grid_hw[0]), int(grid_hw[1]))
        self.dtype_name = dtype
        self.epoch: Optional[int] = None  # the epoch the maps were computed for
        self._maps: Optional[torch.Tensor] = None
        self._on_device: Optional[torch.Tensor] = None
        self._mm: Optional[np.ndarray] = None  # file storage: the read-only memmap
        self.file: Optional[str] = None  # file storage: its path
        self._sha1: Optional[str] = None  # file storage: SHA-1 computed when written

    @classmethod
    def from_maps(cls, maps: torch.Tensor, epoch: Optional[int] = None) -> 'WeightBank':
        """A bank holding ``maps`` (N x h x w, float16 or uint8) as they are."""
        names = {v: k for k, v in BANK_DTYPES.items()}
        if maps.dim() != 3 or maps.dtype not in names:
            raise ValueError(f'WeightBank.from_maps: expected N x h x w float16 or uint8 maps, '
                             f'got {tuple(maps.shape)} {maps.dtype}')
        bank = cls(maps.shape[0], maps.shape[1:], names[maps.dtype])
        bank.set_all(maps, epoch)
        return bank

    # -- contents ------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return BANK_DTYPES[self.dtype_name]

    @property
    def filled(self) -> bool:
        """Whether the bank holds maps (a refresh or a restore has happened)."""
        return self._maps is not None or self._mm is not None

    @property
    def maps(self) -> Optional[torch.Tensor]:
        """All maps, N x h x w on the CPU (None while not :attr:`filled`). Read only (for a
        file bank a view of the memmap: rows are read from disk / page cache on access)."""
        if self._mm is not None:
            with warnings.catch_warnings():  # read-only memmap: torch warns it is not writable
                warnings.simplefilter('ignore', UserWarning)
                return torch.from_numpy(self._mm)
        return self._maps

    @property
    def nbytes(self) -> int:
        return self.num_samples * self.grid_hw[0] * self.grid_hw[1] * self.dtype.itemsize

    def set_all(self, maps: torch.Tensor, epoch: Optional[int] = None) -> None:
        """Replace every map: ``maps`` N x h x w, float16 or uint8, computed for ``epoch``.

        The bank takes the maps' dtype (a restored uint8 bank stays uint8 until the next
        refresh, which quantises with the mask generator's ``bank_dtype``).
        """
        expected = (self.num_samples, *self.grid_hw)
        names = {v: k for k, v in BANK_DTYPES.items()}
        if tuple(maps.shape) != expected or maps.dtype not in names:
            raise ValueError(f'WeightBank: got maps {tuple(maps.shape)} {maps.dtype}, expected '
                             f'{expected} float16 or uint8')
        self.dtype_name = names[maps.dtype]
        self._maps = maps.detach().cpu()
        self._on_device = None
        self._mm = self.file = self._sha1 = None
        self.epoch = epoch

    def set_file(self, path: str, sha1: str, epoch: Optional[int] = None,
                 verify: bool = False) -> None:
        """Use the bank file at ``path`` (``write_bank_file``'s, SHA-1 ``sha1``) for ``epoch``.

        ``verify``: first read the whole file once sequentially (which fills the page cache,
        so training does not fault page by page) and check its SHA-1 against ``sha1``.
        Raises :class:`~famt_mm.bank.bank_file.BankFileError` naming the file otherwise."""
        if verify:
            found, _ = file_checksum(path)
            if found != sha1:
                raise BankFileError(f'the FAMT weight bank file {path} does not hold the bank '
                                    f'just computed (SHA-1 {found[:12]}, expected {sha1[:12]}):'
                                    ' is the work_dir the same file system on every node?')
        mm = open_bank_file(path)
        expected = (self.num_samples, *self.grid_hw)
        names = {np.dtype(np.float16): 'float16', np.dtype(np.uint8): 'uint8'}
        if tuple(mm.shape) != expected or mm.dtype not in names:
            raise ValueError(f'WeightBank: the bank file {path} holds {tuple(mm.shape)} '
                             f'{mm.dtype}, expected {expected} float16 or uint8')
        self.dtype_name = names[mm.dtype]
        self._maps = self._on_device = None
        self._mm, self.file, self._sha1, self.epoch = mm, path, sha1, epoch

    @property
    def rows_on_host(self) -> bool:
        """Whether :meth:`get_rows` gathers on the host (file storage: give it a CPU index)
        rather than on the device (inline storage: give it the index on the device)."""
        return self._mm is not None

    def get_rows(self, sample_idx: torch.Tensor, device=None) -> torch.Tensor:
        """The quantised maps of ``sample_idx`` (B, long), B x h x w on ``device``.

        File storage: one vectorised gather from the memmap into page-locked memory (the
        caching host allocator keeps the block until the copy is done), then a copy that
        does not block the host. Inline storage: the bank is copied to the device once per
        refresh and indexed there. Dequantise with
        ``famt_mm.models.famt_weights.dequantize_weights``.
        """
        if not self.filled:
            raise RuntimeError('WeightBank.get_rows: the bank is empty (no refresh or restore '
                               'yet)')
        device = sample_idx.device if device is None else torch.device(device)
        if self._mm is not None:  # only the batch's rows leave the file (B x h x w)
            idx = sample_idx.cpu().numpy()
            if idx.size and not 0 <= idx.min() <= idx.max() < self.num_samples:
                raise IndexError(f'WeightBank.get_rows: sample_idx outside 0..'
                                 f'{self.num_samples - 1}')
            pin = device.type == 'cuda'
            rows = torch.empty((idx.size, *self.grid_hw), dtype=self.dtype, pin_memory=pin)
            np.take(self._mm, idx, axis=0, out=rows.numpy(), mode='clip')  # clip: unbuffered
            return rows.to(device, non_blocking=pin)
        if self._on_device is None or self._on_device.device != device:
            self._on_device = self._maps.to(device, non_blocking=True)
        return self._on_device[sample_idx.to(device)]

    def checksum(self) -> str:
        """SHA-1 (hex) of the maps' bytes: equal banks, equal checksums (a file bank's was
        computed when it was written)."""
        if self._mm is not None:
            return self._sha1
        if self._maps is None:
            return hashlib.sha1(b'').hexdigest()
        return hashlib.sha1(self._maps.contiguous().view(torch.uint8).numpy().tobytes()
                            ).hexdigest()

    # -- checkpoint format -----------------------------------------------------------
    def state_dict(self, fingerprint: str) -> dict:
        """What a checkpoint stores (``checkpoint['famt']``); ``fingerprint`` identifies the
        training set (:func:`famt_mm.bank.dataset_fingerprint`). A file bank is referenced
        by name, path and SHA-1 (a few hundred bytes), an inline one is stored whole."""
        common = dict(bank_epoch=self.epoch, num_samples=self.num_samples,
                      grid_hw=self.grid_hw, fingerprint=fingerprint)
        if self._mm is not None:
            return dict(common, version=BANK_FILE_FORMAT_VERSION, bank=None,
                        bank_file=osp.basename(self.file), bank_path=osp.abspath(self.file),
                        bank_sha1=self._sha1, bank_dtype=self.dtype_name)
        return dict(common, version=BANK_FORMAT_VERSION, bank=self._maps)

    @staticmethod
    def has_maps(state: Optional[dict]) -> bool:
        """Whether a checkpoint's ``famt`` entry holds (or references) maps to restore."""
        return bool(state) and (state.get('bank') is not None or bool(state.get('bank_file')))

    @staticmethod
    def find_file(state: dict, bank_dirs: Sequence[str] = ()) -> Optional[str]:
        """The referenced bank file: in ``bank_dirs`` (e.g. beside the checkpoint), else at
        the path it was written to; None if neither exists."""
        for path in [osp.join(d, state['bank_file']) for d in bank_dirs] + [state['bank_path']]:
            if osp.isfile(path):
                return path
        return None

    def check_file(self, state: dict, bank_dirs: Sequence[str] = ()) -> Optional[str]:
        """Why the bank file a version-2 ``state`` references cannot be used, or None.

        Missing, short or corrupt (named), other shape or dtype, or bytes whose SHA-1 is not
        the one recorded when it was written (one sequential pass over the file, which also
        fills the page cache for training; docs/design.md gives the time).
        """
        path = self.find_file(state, bank_dirs)
        where = ', '.join(list(bank_dirs) + [osp.dirname(state['bank_path'])])
        if path is None:
            return (f"the FAMT weight bank file {state['bank_file']} that the checkpoint "
                    f'references is missing (looked in {where})')
        try:
            sha1, shape = file_checksum(path)
        except BankFileError as e:
            return str(e)
        if shape != (self.num_samples, *self.grid_hw):
            return (f'the FAMT weight bank file {path} holds {shape} maps, expected '
                    f'{(self.num_samples, *self.grid_hw)}')
        if sha1 != state['bank_sha1']:
            return (f'the FAMT weight bank file {path} has changed since the checkpoint was '
                    f"written (SHA-1 {sha1[:12]}, the checkpoint expects "
                    f"{state['bank_sha1'][:12]})")
        return None

    def check_state(self, state: dict, fingerprint: str) -> Optional[str]:
        """Why ``state`` (from :meth:`state_dict`) does not fit this bank, or None if it does.

        Checked: format version, number of images, grid, tensor shape and dtype, NaN / inf
        values, and the training set's fingerprint (same images in the same order).
        """
        if state.get('version') not in (BANK_FORMAT_VERSION, BANK_FILE_FORMAT_VERSION):
            return (f"the FAMT weight bank has format version {state.get('version')}, "
                    f'this famt_mm reads versions {BANK_FORMAT_VERSION} and '
                    f'{BANK_FILE_FORMAT_VERSION}')
        if state.get('num_samples') != self.num_samples:
            return (f"the FAMT weight bank was computed on {state.get('num_samples')} "
                    f'images but the training set has {self.num_samples}')
        if tuple(state.get('grid_hw', ())) != self.grid_hw:
            return (f"the FAMT weight bank has {tuple(state.get('grid_hw', ()))} patch "
                    f'grids but the model uses {self.grid_hw}')
        if state.get('fingerprint') != fingerprint:
            return ('the FAMT weight bank was computed on a different training set (same '
                    'size, other images or order)')
        if state.get('bank') is None:
            return None  # a file bank: check_file looks at the file
        maps = state['bank']
        expected = (self.num_samples, *self.grid_hw)
        if tuple(maps.shape) != expected or maps.dtype not in BANK_DTYPES.values():
            return (f'the FAMT weight bank tensor is {tuple(maps.shape)} {maps.dtype}, '
                    f'expected {expected} float16 or uint8 (corrupt checkpoint?)')
        if maps.is_floating_point() and not bool(torch.isfinite(maps).all()):
            return 'the FAMT weight bank holds NaN / inf values (corrupt checkpoint?)'
        return None

    def load_state_dict(self, state: dict, bank_dirs: Sequence[str] = ()) -> None:
        """Restore maps and epoch from a state that passed :meth:`check_state` (and, for a
        file bank, :meth:`check_file` with the same ``bank_dirs``)."""
        if state.get('bank') is None:
            self.set_file(self.find_file(state, bank_dirs), state['bank_sha1'],
                          state['bank_epoch'])
        else:
            self.set_all(state['bank'], state['bank_epoch'])

    def __repr__(self) -> str:
        return (f'WeightBank({self.num_samples} x {self.grid_hw[0]} x {self.grid_hw[1]}, '
                f'{self.dtype_name}, epoch={self.epoch})')
