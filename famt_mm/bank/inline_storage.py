"""The inline bank storage: one CPU tensor per process, stored whole in every checkpoint.

For small banks (``bank_storage='auto'`` below 64 MiB: CIFAR, Tiny ImageNet, the tests). The
training device gets a copy on the first read after each write, so rows are gathered there.
"""
from typing import Optional, Tuple

import torch

from .encoding import BANK_DTYPES
from .storage import BankStorage, maps_sha1, register_storage


@register_storage
class InlineBankStorage(BankStorage):
    """The maps as a tensor in this process (and a copy on the training device)."""

    kind = 'inline'
    format_version = 1  # checkpoint['famt']: the maps under 'bank'
    rows_on_host = False

    def __init__(self):
        self._maps: Optional[torch.Tensor] = None
        self._on_device: Optional[torch.Tensor] = None

    @property
    def filled(self) -> bool:
        return self._maps is not None

    @property
    def maps(self) -> Optional[torch.Tensor]:
        return self._maps

    def write(self, maps: torch.Tensor, epoch: int) -> None:
        self._maps = maps.detach().cpu()
        self._on_device = None  # a refresh: the old device copy must not be served again

    def get_rows(self, sample_idx: torch.Tensor, device: torch.device) -> torch.Tensor:
        if self._on_device is None or self._on_device.device != device:
            self._on_device = self._maps.to(device, non_blocking=True)
        return self._on_device[sample_idx.to(device)]

    def checksum(self) -> str:
        return maps_sha1(self._maps if self._maps is not None else torch.zeros(0))

    def state(self) -> dict:
        return dict(version=self.format_version, bank=self._maps)

    def check(self, state: dict, shape: Tuple[int, ...],
              checkpoint: Optional[str] = None) -> Optional[str]:
        maps = state.get('bank')
        if not isinstance(maps, torch.Tensor):
            return f'the FAMT weight bank entry is a {type(maps).__name__}, not a tensor ' \
                '(corrupt checkpoint?)'
        if tuple(maps.shape) != tuple(shape) or maps.dtype not in BANK_DTYPES.values():
            return (f'the FAMT weight bank tensor is {tuple(maps.shape)} {maps.dtype}, '
                    f'expected {tuple(shape)} float16 or uint8 (corrupt checkpoint?)')
        if maps.is_floating_point() and not bool(torch.isfinite(maps).all()):
            return 'the FAMT weight bank holds NaN / inf values (corrupt checkpoint?)'
        return None

    def restore(self, state: dict, checkpoint: Optional[str] = None) -> None:
        self.write(state['bank'], state.get('bank_epoch'))

    def close(self) -> None:
        self._maps = self._on_device = None
