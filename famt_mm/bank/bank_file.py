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


def write_bank_file(path: str, maps: torch.Tensor) -> str:
    """Write ``maps`` (N x h x w, float16 or uint8) to ``path``; return the SHA-1 of the bytes.

    Writes ``path + '.tmp'`` then renames, so a crash leaves no half file under ``path``.
    """
    flat = maps.contiguous()
    return write_bank_chunks(path, tuple(flat.shape), str(flat.dtype).split('.')[-1],
                             (flat[i:i + CHUNK_ROWS].numpy()
                              for i in range(0, flat.shape[0], CHUNK_ROWS)))


def write_bank_chunks(path: str, shape: Tuple[int, ...], dtype_name: str,
                      chunks: Iterable[np.ndarray]) -> str:
    """:func:`write_bank_file` from row chunks in order (arrays of ``dtype_name``, rows x h x w),
    so a bank larger than memory can be written."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    out = np.lib.format.open_memmap(tmp, mode='w+', dtype=np.dtype(dtype_name), shape=shape)
    h, pos = hashlib.sha1(), 0
    for chunk in chunks:
        out[pos:pos + chunk.shape[0]] = chunk
        h.update(np.ascontiguousarray(chunk).view(np.uint8).reshape(-1))
        pos += chunk.shape[0]
    if pos != shape[0]:
        raise ValueError(f'write_bank_chunks: got {pos} rows for a bank of {shape[0]}')
    out.flush()
    del out
    os.replace(tmp, path)
    return h.hexdigest()


def open_bank_file(path: str) -> np.memmap:
    """The bank at ``path`` mapped read-only (N x h x w); nothing is read until rows are."""
    return np.load(path, mmap_mode='r', allow_pickle=False)


def file_checksum(path: str) -> Tuple[str, Tuple[int, ...]]:
    """SHA-1 of the bank bytes in ``path`` (as :func:`write_bank_file` returns) and its shape."""
    mm = open_bank_file(path)
    raw = mm.reshape(-1).view(np.uint8)
    h = hashlib.sha1()
    step = CHUNK_ROWS * int(np.prod(mm.shape[1:])) * mm.itemsize
    for start in range(0, raw.size, step):
        h.update(raw[start:start + step])
    return h.hexdigest(), tuple(mm.shape)
