"""``BankStorage``: where a ``WeightBank``'s N x h x w maps live, and how a checkpoint holds them.

A storage keeps the maps of one epoch at a time (``write`` replaces them), reads rows by dataset
index, says what a checkpoint stores (``state``), checks and restores such a state, and lets go
of what it holds (``close``). ``WeightBank`` checks the layout common to every storage (size,
grid, dtype, dataset) and delegates the rest; it holds no storage-specific code. A storage
registers under the name ``FAMTWeightHook(bank_storage=...)`` uses (:func:`register_storage`),
and the ``version`` of ``checkpoint['famt']`` names the storage that wrote it. Today: 'inline'
(famt_mm/bank/inline_storage.py) and 'file' (famt_mm/bank/file_storage.py). docs/design.md
"The weight bank at scale".
"""
import hashlib
from abc import ABCMeta, abstractmethod
from typing import Callable, ClassVar, Dict, Optional, Sequence, Tuple, Type, TypeVar

import torch

T = TypeVar('T')

#: Runs a step on every rank and agrees on failure (``famt_mm.engine.rank_agreement.
#: on_every_rank``): ``run(fn, what)``. Passed in, since famt_mm.bank imports nothing of engine.
RankRunner = Callable[[Callable[[], T], str], T]


def run_locally(fn: Callable[[], T], what: str) -> T:
    """The :data:`RankRunner` of a single process: ``fn()``."""
    return fn()


def maps_sha1(maps: torch.Tensor) -> str:
    """SHA-1 (hex) of the maps' bytes: equal maps, equal checksums (a bank file's bytes hash to
    the same value)."""
    return hashlib.sha1(maps.contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


class BankStorage(metaclass=ABCMeta):
    """Holds one epoch's quantised maps (N x h x w, float16 or uint8) of a ``WeightBank``.

    Subclasses set :attr:`kind` (the ``bank_storage`` name), :attr:`format_version` (the
    ``version`` their checkpoint state carries) and :attr:`rows_on_host`.
    """

    #: The name ``FAMTWeightHook(bank_storage=...)`` selects this storage by.
    kind: ClassVar[str]
    #: ``checkpoint['famt']['version']`` of the states this storage writes and restores.
    format_version: ClassVar[int]
    #: Whether :meth:`get_rows` gathers on the host (give it a CPU index) rather than on the
    #: device (give it the index on the device).
    rows_on_host: ClassVar[bool] = False

    @classmethod
    def for_run(cls, work_dir: str, keep: int, run_on_ranks: RankRunner) -> 'BankStorage':
        """This storage for a training run: its work_dir, the ``keep_banks`` setting and the
        rank-agreement step runner (each storage takes what it needs)."""
        return cls()

    # -- contents ------------------------------------------------------------------------
    @property
    @abstractmethod
    def filled(self) -> bool:
        """Whether maps are held (written or restored)."""

    @property
    @abstractmethod
    def maps(self) -> Optional[torch.Tensor]:
        """All maps, N x h x w on the CPU, read only (None while not :attr:`filled`)."""

    @property
    def file(self) -> Optional[str]:
        """The file the maps are read from (None: they are in this process's memory)."""
        return None

    @abstractmethod
    def write(self, maps: torch.Tensor, epoch: int) -> None:
        """Hold ``maps`` (N x h x w, float16 or uint8, checked by the bank), computed for
        ``epoch``, in place of the previous ones. Every rank calls it with the same maps."""

    @abstractmethod
    def get_rows(self, sample_idx: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Rows ``sample_idx`` (B, long, on the host if :attr:`rows_on_host` else on
        ``device``), B x h x w on ``device``."""

    @abstractmethod
    def checksum(self) -> str:
        """SHA-1 of the held maps' bytes (:func:`maps_sha1`)."""

    # -- checkpoints ---------------------------------------------------------------------
    @abstractmethod
    def state(self) -> dict:
        """What ``checkpoint['famt']`` holds of the maps (``version`` included)."""

    @abstractmethod
    def check(self, state: dict, shape: Tuple[int, ...],
              checkpoint: Optional[str] = None) -> Optional[str]:
        """Why the maps of ``state`` (this storage's :attr:`format_version`) cannot be
        restored as N x h x w = ``shape``, or None. ``checkpoint``: the file ``state`` was read
        from (a storage may look for its data beside it)."""

    @abstractmethod
    def restore(self, state: dict, checkpoint: Optional[str] = None) -> None:
        """Hold the maps of a ``state`` that passed :meth:`check` (same ``checkpoint``)."""

    def referenced(self, state: dict) -> None:
        """``state`` belongs to the newest checkpoint (just saved or loaded): keep what it
        references (a file storage: the file, whatever its rotation says)."""

    def restore_fix(self, problems: Sequence[str]) -> str:
        """What to do when a restore failed with ``problems`` (the run stops with it)."""
        return 'Resume with the dataset the run was started with and an intact bank file'

    def close(self) -> None:
        """Let go of the held maps (memory, mappings); written files stay."""


#: The storages by :attr:`BankStorage.kind` (:func:`register_storage`).
BANK_STORAGES: Dict[str, Type[BankStorage]] = {}

S = TypeVar('S', bound=Type[BankStorage])


def register_storage(cls: S) -> S:
    """Class decorator: make ``cls`` selectable as ``bank_storage=cls.kind`` and the reader
    of checkpoint states of ``cls.format_version``."""
    clash = [c for c in BANK_STORAGES.values()
             if c is not cls and (c.kind == cls.kind or c.format_version == cls.format_version)]
    if clash:
        raise ValueError(f'bank storage {cls.__name__}: kind {cls.kind!r} or format version '
                         f'{cls.format_version} already taken by {clash[0].__name__}')
    BANK_STORAGES[cls.kind] = cls
    return cls


def storage_for_state(state: dict) -> Optional[Type[BankStorage]]:
    """The storage that wrote ``state`` (a ``checkpoint['famt']``), by its ``version``; None
    for a version no registered storage reads."""
    return next((c for c in BANK_STORAGES.values()
                 if c.format_version == state.get('version')), None)


#: ``bank_storage='auto'`` stores banks of this size or more as files (ImageNet-1K: 479 MiB).
FILE_BANK_BYTES = 64 * 2**20


def storage_kind(setting: str, nbytes: int) -> str:
    """The storage ``bank_storage=setting`` gives a bank of ``nbytes``: 'auto' is 'file' from
    :data:`FILE_BANK_BYTES` on, else 'inline'; any other setting names its storage."""
    check_storage_setting(setting)
    if setting == 'auto':
        return 'file' if nbytes >= FILE_BANK_BYTES else 'inline'
    return setting


def check_storage_setting(setting: str) -> None:
    """Raise ``ValueError`` naming the choices unless ``setting`` is 'auto' or a storage."""
    names = ['auto'] + sorted(BANK_STORAGES)
    if setting not in names:
        raise ValueError(f'bank_storage={setting!r}, use ' + ', '.join(map(repr, names[:-1]))
                         + f' or {names[-1]!r}')


__all__ = ['BankStorage', 'BANK_STORAGES', 'register_storage', 'storage_for_state',
           'storage_kind', 'check_storage_setting', 'FILE_BANK_BYTES', 'maps_sha1',
           'run_locally', 'RankRunner']
