"""``WeightBank``: the N x h x w sampling-weight maps of a training set and their checkpoint format.

Row ``i`` is the map of the image with dataset index (``sample_idx``) ``i``, encoded by
``famt_mm.bank.encoding`` (float16: 2 bytes per cell, uint8: 1 byte). Where the rows live is
the bank's :class:`~famt_mm.bank.storage.BankStorage` (inline or file); the bank checks what
every storage shares (size, grid, dtype, dataset) and never looks inside one.
See docs/method.md section 6 (the bank) and docs/design.md (its place in the code).
"""
from typing import Optional, Sequence, Tuple

import torch

from .bank_file import open_bank_file
from .encoding import BANK_DTYPES, dequantize_weights, dtype_name
from .file_storage import FileBankStorage
from .inline_storage import InlineBankStorage
from .storage import BANK_STORAGES, BankStorage, storage_for_state

#: ``checkpoint['famt']['version']`` of an inline bank (the maps) and of a file bank (a
#: reference to the file); both are read.
BANK_FORMAT_VERSION = InlineBankStorage.format_version
BANK_FILE_FORMAT_VERSION = FileBankStorage.format_version


class WeightBank:
    """One quantised weight map per training image, indexed by dataset index.

    Args:
        num_samples (int): N, the training-set size.
        grid_hw (tuple[int, int]): (h, w), the model's masking grid (``model.grid_hw``).
        dtype (str): 'float16' or 'uint8' (``famt_mm.bank.encoding.BANK_DTYPES``): the dtype
            until maps are set (:meth:`set_all` takes theirs).
        storage (BankStorage, optional): where the maps live (default: inline, in memory);
            :meth:`use_storage` changes it.
    """

    def __init__(self, num_samples: int, grid_hw: Sequence[int], dtype: str = 'float16',
                 storage: Optional[BankStorage] = None):
        if dtype not in BANK_DTYPES:
            raise ValueError(f'WeightBank: dtype {dtype!r} not in {tuple(BANK_DTYPES)}')
        self.num_samples = int(num_samples)
        self.grid_hw: Tuple[int, int] = (int(grid_hw[0]), int(grid_hw[1]))
        self.dtype_name = dtype
        self.epoch: Optional[int] = None  # the epoch the maps were computed for
        self.storage: BankStorage = storage if storage is not None else InlineBankStorage()

    @classmethod
    def from_maps(cls, maps: torch.Tensor, epoch: Optional[int] = None) -> 'WeightBank':
        """An inline bank holding ``maps`` (N x h x w, float16 or uint8) as they are."""
        if maps.dim() != 3 or maps.dtype not in BANK_DTYPES.values():
            raise ValueError(f'WeightBank.from_maps: expected N x h x w float16 or uint8 maps, '
                             f'got {tuple(maps.shape)} {maps.dtype}')
        bank = cls(maps.shape[0], maps.shape[1:], dtype_name(maps.dtype))
        bank.set_all(maps, epoch)
        return bank

    @classmethod
    def from_file(cls, path: str, sha1: str, epoch: Optional[int] = None,
                  verify: bool = False) -> 'WeightBank':
        """A file bank mapping the existing bank file ``path`` (SHA-1 ``sha1``; ``verify``:
        read it through and check that first)."""
        mm = open_bank_file(path)
        bank = cls(mm.shape[0], mm.shape[1:], dtype_name(mm.dtype), FileBankStorage())
        del mm
        bank.storage.open(path, sha1, verify, shape=bank.shape)
        bank.epoch = epoch
        return bank

    # -- contents ------------------------------------------------------------------
    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.num_samples, *self.grid_hw)

    @property
    def dtype(self) -> torch.dtype:
        return BANK_DTYPES[self.dtype_name]

    @property
    def filled(self) -> bool:
        """Whether the bank holds maps (a refresh or a restore has happened)."""
        return self.storage.filled

    @property
    def maps(self) -> Optional[torch.Tensor]:
        """All maps, N x h x w on the CPU (None while not :attr:`filled`). Read only (for a
        file bank a view of the memmap: rows are read from disk / page cache on access)."""
        return self.storage.maps

    @property
    def file(self) -> Optional[str]:
        """The file the maps are read from (None: in memory)."""
        return self.storage.file

    @property
    def rows_on_host(self) -> bool:
        """Whether :meth:`get_rows` gathers on the host (give it a CPU index) rather than on
        the device (give it the index on the device)."""
        return self.storage.rows_on_host

    @property
    def nbytes(self) -> int:
        return self.num_samples * self.grid_hw[0] * self.grid_hw[1] * self.dtype.itemsize

    def use_storage(self, storage: BankStorage) -> None:
        """Keep the maps in ``storage`` from the next :meth:`set_all` / restore on (the
        current storage lets go of its maps when it is another one)."""
        if storage is not self.storage:
            self.storage.close()
            self.storage = storage

    def set_all(self, maps: torch.Tensor, epoch: Optional[int] = None) -> None:
        """Replace every map: ``maps`` N x h x w, float16 or uint8, computed for ``epoch``.

        The bank takes the maps' dtype (a restored uint8 bank stays uint8 until the next
        refresh, which quantises with the mask generator's ``bank_dtype``). A file storage
        writes the file here (rank 0) and maps it on every rank: all ranks call it together.
        """
        if tuple(maps.shape) != self.shape or maps.dtype not in BANK_DTYPES.values():
            raise ValueError(f'WeightBank: got maps {tuple(maps.shape)} {maps.dtype}, expected '
                             f'{self.shape} float16 or uint8')
        self.storage.write(maps, epoch)
        self.dtype_name = dtype_name(maps.dtype)
        self.epoch = epoch

    def get_rows(self, sample_idx: torch.Tensor, device=None) -> torch.Tensor:
        """The quantised maps of ``sample_idx`` (B, long), B x h x w on ``device``.

        Index on the host for a storage with :attr:`rows_on_host`, on the device otherwise
        (then no host <-> device sync)."""
        if not self.filled:
            raise RuntimeError('WeightBank.get_rows: the bank is empty (no refresh or restore '
                               'yet)')
        device = sample_idx.device if device is None else torch.device(device)
        return self.storage.get_rows(sample_idx, device)

    def get_weights(self, sample_idx: torch.Tensor, device=None) -> torch.Tensor:
        """:meth:`get_rows` decoded: B x h x w float32 weights on ``device``, row max ~1."""
        return dequantize_weights(self.get_rows(sample_idx, device))

    def checksum(self) -> str:
        """SHA-1 (hex) of the maps' bytes: equal banks, equal checksums (a file bank's was
        computed when it was written)."""
        return self.storage.checksum()

    def close(self) -> None:
        """Let go of the maps (the storage's memory or mapping; written files stay)."""
        self.storage.close()

    # -- checkpoint format -----------------------------------------------------------
    def state_dict(self, fingerprint: str) -> dict:
        """What a checkpoint stores (``checkpoint['famt']``); ``fingerprint`` identifies the
        training set (:func:`famt_mm.bank.dataset_fingerprint`). The storage adds the maps
        (inline, ``version`` 1) or a reference to them (a file's name, path and SHA-1,
        ``version`` 2). Call it for a checkpoint being saved (the storage keeps what it
        references)."""
        state = dict(bank_epoch=self.epoch, num_samples=self.num_samples,
                     grid_hw=self.grid_hw, fingerprint=fingerprint, **self.storage.state())
        self.storage.referenced(state)  # the checkpoint being saved is now the newest
        return state

    @staticmethod
    def has_maps(state: Optional[dict]) -> bool:
        """Whether a checkpoint's ``famt`` entry holds (or references) maps to restore."""
        return bool(state) and (state.get('bank') is not None or bool(state.get('bank_file')))

    @staticmethod
    def storage_kind(state: dict) -> Optional[str]:
        """The ``bank_storage`` kind that wrote ``state`` (None: an unknown format version)."""
        storage = storage_for_state(state)
        return storage.kind if storage is not None else None

    def check_state(self, state: dict, fingerprint: str,
                    checkpoint: Optional[str] = None) -> Optional[str]:
        """Why ``state`` (from :meth:`state_dict`) cannot be restored into this bank, or None.

        Checked here: format version, number of images, grid, the training set's fingerprint
        (same images in the same order); then by the storage (which must be the one that
        wrote ``state``, :meth:`storage_kind`): the maps' shape, dtype and integrity (inline:
        NaN / inf; file: found, intact, unchanged). ``checkpoint``: the file ``state`` came
        from (a file bank is looked for beside it).
        """
        if storage_for_state(state) is None:
            versions = ' and '.join(str(c.format_version) for c in BANK_STORAGES.values())
            return (f"the FAMT weight bank has format version {state.get('version')}, "
                    f'this famt_mm reads versions {versions}')
        if state.get('num_samples') != self.num_samples:
            return (f"the FAMT weight bank was computed on {state.get('num_samples')} "
                    f'images but the training set has {self.num_samples}')
        if tuple(state.get('grid_hw', ())) != self.grid_hw:
            return (f"the FAMT weight bank has {tuple(state.get('grid_hw', ()))} patch "
                    f'grids but the model uses {self.grid_hw}')
        if state.get('fingerprint') != fingerprint:
            return ('the FAMT weight bank was computed on a different training set (same '
                    'size, other images or order)')
        if self.storage.format_version != state['version']:
            raise ValueError(f'WeightBank.check_state: a {self.storage_kind(state)} bank state '
                             f'needs that storage, this bank uses {self.storage.kind} '
                             '(use_storage first)')
        return self.storage.check(state, self.shape, checkpoint)

    def load_state_dict(self, state: dict, checkpoint: Optional[str] = None) -> None:
        """Restore maps and epoch from a state that passed :meth:`check_state` (same
        ``checkpoint``)."""
        self.storage.restore(state, checkpoint)
        self.dtype_name = dtype_name(self.storage.maps.dtype)
        self.epoch = state['bank_epoch']

    def __repr__(self) -> str:
        return (f'WeightBank({self.num_samples} x {self.grid_hw[0]} x {self.grid_hw[1]}, '
                f'{self.dtype_name}, {self.storage.kind}, epoch={self.epoch})')
