"""The bank as one ``.npy`` file per refresh, beside the checkpoints, read through a memmap.

Written once per refresh (rank 0, write then rename: the file is complete or absent), its SHA-1
computed while writing and kept in the checkpoints that reference it; every process on a machine
maps the same file read-only, so the page cache holds one copy per machine whatever the number
of GPU processes and data loader workers. See docs/design.md "The weight bank at scale".
"""
import hashlib
import os
import os.path as osp
from typing import Iterable, Tuple

import numpy as np
import torch

#: Rows hashed and written per step: bounds the extra memory of a write (rows x h x w x 2 B).
CHUNK_ROWS = 1 << 18


def bank_file_name(epoch: int, dtype_name: str) -> str:
    """``bank_epoch_XXXX.<dtype>.npy``: the bank computed for ``epoch``."""
    return f'bank_epoch_{int(epoch):04d}.{dtype_name}.npy'


def _chunks(maps: torch.Tensor) -> Iterable[np.ndarray]:
    flat = maps.contiguous()
    for start in range(0, flat.shape[0], CHUNK_ROWS):
        yield flat[start:start + CHUNK_ROWS].view(torch.uint8).numpy()


def write_bank_file(path: str, maps: torch.Tensor) -> str:
    """Write ``maps`` (N x h x w, float16 or uint8) to ``path``; return the SHA-1 of the bytes.

    Writes ``path + '.tmp'`` then renames, so a crash leaves no half file under ``path``.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    dtype = np.float16 if maps.dtype == torch.float16 else np.uint8
    out = np.lib.format.open_memmap(tmp, mode='w+', dtype=dtype, shape=tuple(maps.shape))
    raw = out.reshape(-1).view(np.uint8)
    h, pos = hashlib.sha1(), 0
    for chunk in _chunks(maps):
        b = chunk.reshape(-1)
        raw[pos:pos + b.size] = b
        h.update(b)
        pos += b.size
    out.flush()
    del out, raw
    os.replace(tmp, path)
    return h.hexdigest()


def open_bank_file(path: str) -> np.memmap:
    """The bank at ``path`` mapped read-only (N x h x w); nothing is read until rows are."""
    return np.load(path, mmap_mode='r')


def file_checksum(path: str) -> Tuple[str, Tuple[int, ...]]:
    """SHA-1 of the bank bytes in ``path`` (as :func:`write_bank_file` returns) and its shape."""
    mm = open_bank_file(path)
    raw = mm.reshape(-1).view(np.uint8)
    h = hashlib.sha1()
    step = CHUNK_ROWS * int(np.prod(mm.shape[1:])) * mm.itemsize
    for start in range(0, raw.size, step):
        h.update(raw[start:start + step])
    return h.hexdigest(), tuple(mm.shape)
