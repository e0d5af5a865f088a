"""``WeightBank``: the N x h x w sampling-weight maps of a training set and their checkpoint format.

Row ``i`` is the map of the image with dataset index (``sample_idx``) ``i``, quantised by
``famt_mm.models.famt_weights.quantize_weights`` (float16: 2 bytes per cell, uint8: 1 byte).
See docs/method.md section 6 (the bank) and docs/design.md (its place in the code).
"""
import hashlib
from typing import Optional, Sequence, Tuple

import torch

#: Version of the ``checkpoint['famt']`` layout written by :meth:`WeightBank.state_dict`.
BANK_FORMAT_VERSION = 1

#: Storage dtypes of a bank, by the name a config uses (``FAMTMaskGenerator.bank_dtype``).
BANK_DTYPES = {'float16': torch.float16, 'uint8': torch.uint8}


class WeightBank:
    """One quantised weight map per training image, indexed by dataset index.

    Storage today: one CPU tensor per process, plus a copy on the training device made on
    the first :meth:`get_rows` after each :meth:`set_all` (one host -> device copy per
    refresh, none per step). Everything outside this class goes through the methods below,
    so the storage can change (e.g. one shared copy per machine) behind them.

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
        return self._maps is not None

    @property
    def maps(self) -> Optional[torch.Tensor]:
        """All maps, N x h x w on the CPU (None while not :attr:`filled`). Read only."""
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
        self.epoch = epoch

    def get_rows(self, sample_idx: torch.Tensor, device=None) -> torch.Tensor:
        """The quantised maps of ``sample_idx`` (B, long), B x h x w on ``device``.

        Dequantise with ``famt_mm.models.famt_weights.dequantize_weights``.
        """
        if self._maps is None:
            raise RuntimeError('WeightBank.get_rows: the bank is empty (no refresh or restore '
                               'yet)')
        device = sample_idx.device if device is None else torch.device(device)
        if self._on_device is None or self._on_device.device != device:
            self._on_device = self._maps.to(device, non_blocking=True)
        return self._on_device[sample_idx.to(device)]

    def checksum(self) -> str:
        """SHA-1 (hex) of the maps' bytes: equal banks, equal checksums."""
        if self._maps is None:
            return hashlib.sha1(b'').hexdigest()
        return hashlib.sha1(self._maps.contiguous().view(torch.uint8).numpy().tobytes()
                            ).hexdigest()

    # -- checkpoint format -----------------------------------------------------------
    def state_dict(self, fingerprint: str) -> dict:
        """What a checkpoint stores (``checkpoint['famt']``); ``fingerprint`` identifies the
        training set (:func:`famt_mm.bank.dataset_fingerprint`)."""
        return dict(version=BANK_FORMAT_VERSION, bank=self._maps, bank_epoch=self.epoch,
                    num_samples=self.num_samples, grid_hw=self.grid_hw,
                    fingerprint=fingerprint)

    @staticmethod
    def has_maps(state: Optional[dict]) -> bool:
        """Whether a checkpoint's ``famt`` entry holds maps to restore."""
        return bool(state) and state.get('bank') is not None

    def check_state(self, state: dict, fingerprint: str) -> Optional[str]:
        """Why ``state`` (from :meth:`state_dict`) does not fit this bank, or None if it does.

        Checked: format version, number of images, grid, tensor shape and dtype, NaN / inf
        values, and the training set's fingerprint (same images in the same order).
        """
        if state.get('version') != BANK_FORMAT_VERSION:
            return (f"the FAMT weight bank has format version {state.get('version')}, "
                    f'this famt_mm reads version {BANK_FORMAT_VERSION}')
        if state.get('num_samples') != self.num_samples:
            return (f"the FAMT weight bank was computed on {state.get('num_samples')} "
                    f'images but the training set has {self.num_samples}')
        if tuple(state.get('grid_hw', ())) != self.grid_hw:
            return (f"the FAMT weight bank has {tuple(state.get('grid_hw', ()))} patch "
                    f'grids but the model uses {self.grid_hw}')
        maps = state['bank']
        expected = (self.num_samples, *self.grid_hw)
        if tuple(maps.shape) != expected or maps.dtype not in BANK_DTYPES.values():
            return (f'the FAMT weight bank tensor is {tuple(maps.shape)} {maps.dtype}, '
                    f'expected {expected} float16 or uint8 (corrupt checkpoint?)')
        if maps.is_floating_point() and not bool(torch.isfinite(maps).all()):
            return 'the FAMT weight bank holds NaN / inf values (corrupt checkpoint?)'
        if state.get('fingerprint') != fingerprint:
            return ('the FAMT weight bank was computed on a different training set (same '
                    'size, other images or order)')
        return None

    def load_state_dict(self, state: dict) -> None:
        """Restore maps and epoch from a state that passed :meth:`check_state`."""
        self.set_all(state['bank'], state['bank_epoch'])

    def __repr__(self) -> str:
        return (f'WeightBank({self.num_samples} x {self.grid_hw[0]} x {self.grid_hw[1]}, '
                f'{self.dtype_name}, epoch={self.epoch})')
