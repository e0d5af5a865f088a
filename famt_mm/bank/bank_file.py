"""The bank file format: one ``.npy`` file, written atomically, verified, read through a memmap.

Where and when files are written, kept and looked for is ``file_storage.py``. Written once per
refresh (rank 0: write a temporary file, fsync it, rename it, fsync the
directory: after a crash the file is complete or absent; a stray ``*.tmp`` is removed by
:func:`remove_stray_temporaries` at the next refresh), its SHA-1 computed while writing and
kept in the checkpoints that reference it; every process on a machine maps the same file
read-only, so the page cache holds one copy per machine whatever the number of GPU processes
and data loader workers. See docs/design.md "The weight bank at scale".
"""
import hashlib
import os
import os.path as osp
from typing import Iterable, List, Tuple

import numpy as np
import torch

#: Suffix of a bank file being written (renamed to its final name once complete).
TMP_SUFFIX = '.tmp'

#: Bytes per sequential read of :func:`read_through` / :func:`file_checksum`.
READ_BYTES = 8 << 20


class BankFileError(ValueError):
    """A bank file that cannot be used (missing, short, corrupt); the message names the file."""


#: Rows hashed and written per step: bounds the extra memory of a write (rows x h x w x 2 B).
CHUNK_ROWS = 1 << 18


def write_bank_file(path: str, maps: torch.Tensor) -> str:
    """Write ``maps`` (N x h x w, float16 or uint8) to ``path``; return the SHA-1 of the bytes.

    Writes ``path + '.tmp'``, fsyncs it, renames it and fsyncs the directory, so a crash (or a
    SIGKILL) leaves no half file under ``path``, only a ``.tmp`` that the next refresh removes.
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
    tmp = path + TMP_SUFFIX
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
    _fsync(tmp)  # the data reach the disk before the name does (no empty file after a crash)
    os.replace(tmp, path)
    _fsync(osp.dirname(osp.abspath(path)))  # the rename itself survives a crash
    return h.hexdigest()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stray_temporaries(bank_dir: str) -> List[str]:
    """Remove the ``*.tmp`` files a killed write left in ``bank_dir``; returns their paths.

    Only the process that writes bank files (rank 0) may call it, and not while it writes."""
    removed = []
    if osp.isdir(bank_dir):
        for name in sorted(os.listdir(bank_dir)):
            if name.endswith(TMP_SUFFIX):
                os.remove(osp.join(bank_dir, name))
                removed.append(osp.join(bank_dir, name))
    return removed


def bank_file_layout(path: str) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of the ``.npy`` bank at ``path``, from its header.

    Raises :class:`BankFileError` naming the file when it is missing, is not a ``.npy`` file,
    or is shorter than its header says (e.g. cut off while copying a work dir)."""
    if not osp.isfile(path):
        raise BankFileError(f'the FAMT weight bank file {path} does not exist')
    try:
        with open(path, 'rb') as f:
            version = np.lib.format.read_magic(f)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = header(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise BankFileError(f'the FAMT weight bank file {path} is corrupt (no valid .npy '
                            f'header: {type(e).__name__}: {e})') from e
    if fortran or dtype.hasobject:
        raise BankFileError(f'the FAMT weight bank file {path} is corrupt (header: '
                            f'{dtype}, fortran_order={fortran})')
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    size = os.path.getsize(path)
    if size != expected:
        raise BankFileError(f'the FAMT weight bank file {path} is {size} bytes, its header '
                            f'({tuple(shape)} {dtype}) needs {expected}: it was cut short (or '
                            'extended), e.g. by a full disk or an interrupted copy')
    return tuple(shape), dtype, offset


def read_through(path: str, offset: int = 0) -> Tuple[str, int]:
    """Read ``path`` from ``offset`` to its end once, sequentially, in large reads; returns
    (SHA-1 of those bytes, bytes read).

    Fills this machine's page cache before training maps rows of the file at random, so the
    first epoch after a resume (or on a node that did not write the file) does not fault page
    by page; docs/design.md "The weight bank at scale" gives the cost."""
    h, n = hashlib.sha1(), 0
    with open(path, 'rb', buffering=0) as f:
        if hasattr(os, 'posix_fadvise'):  # tell the kernel to read ahead in large steps
            os.posix_fadvise(f.fileno(), offset, 0, os.POSIX_FADV_SEQUENTIAL)
        f.seek(offset)
        buf = bytearray(READ_BYTES)
        view = memoryview(buf)
        while True:
            got = f.readinto(buf)
            if not got:
                break
            h.update(view[:got])
            n += got
    return h.hexdigest(), n


def open_bank_file(path: str) -> np.memmap:
    """The bank at ``path`` mapped read-only (N x h x w); nothing is read until rows are.

    Raises :class:`BankFileError` naming the file when it is missing, short or corrupt."""
    bank_file_layout(path)
    return np.load(path, mmap_mode='r', allow_pickle=False)


def file_checksum(path: str) -> Tuple[str, Tuple[int, ...]]:
    """SHA-1 of the bank bytes in ``path`` (as :func:`write_bank_file` returns) and its shape;
    one sequential read of the file (:func:`read_through`), which also fills the page cache.

    Raises :class:`BankFileError` naming the file when it is missing, short or corrupt."""
    shape, _, offset = bank_file_layout(path)
    try:
        sha1, _ = read_through(path, offset)
    except OSError as e:
        raise BankFileError(f'the FAMT weight bank file {path} cannot be read: '
                            f'{type(e).__name__}: {e}') from e
    return sha1, shape
