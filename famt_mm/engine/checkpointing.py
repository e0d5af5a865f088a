"""Checkpoints that survive crashes: atomic writes and a resume that skips broken files.

* ``FAMTAtomicLocalBackend`` (mmengine file backend ``'famt_atomic_local'``):
  ``CheckpointHook(backend_args=dict(backend='famt_atomic_local'))`` makes every
  checkpoint complete or absent: the bytes go to a hidden temporary file in the
  same directory, are fsync'ed, then ``os.replace``'d onto the name (atomic on
  POSIX), and the directory is fsync'ed. A crash, a kill or a full disk while
  saving leaves the previous file of that name (or none), never a truncated one.
* ``newest_loadable_checkpoint(work_dir)``: what ``--resume`` / ``resume=True``
  should resume from: the file named in ``last_checkpoint`` if it loads, else the
  newest ``epoch_N.pth`` / ``iter_N.pth`` that does (tools/train.py uses it).

See docs/design.md, "Reliability".
"""
import glob
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

from mmengine.fileio import LocalBackend, register_backend

from ..checkpoint_io import UnsafeCheckpointError, load_checkpoint_safely

CKPT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def partial_path(filepath: str) -> str:
    """The temporary file a checkpoint is written to first (same directory, hidden)."""
    return osp.join(osp.dirname(filepath), f'.{osp.basename(filepath)}.partial')


def _fsync_dir(dirname: str) -> None:
    fd = os.open(dirname or '.', os.O_RDONLY)
    try:
        os.fsync(fd)  # makes the rename itself durable
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, filepath: str, write=None) -> None:
    """Write ``data`` to ``filepath`` so that the file is complete or not there.

    ``write(f, data)`` writes the bytes (default ``f.write``), a seam for tests.
    """
    filepath = osp.abspath(str(filepath))
    os.makedirs(osp.dirname(filepath), exist_ok=True)
    tmp = partial_path(filepath)
    try:
        with open(tmp, 'wb') as f:
            (write or (lambda fh, b: fh.write(b)))(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):  # e.g. disk full: keep the old file, drop the partial one
            os.remove(tmp)
        raise
    _fsync_dir(osp.dirname(filepath))


@register_backend('famt_atomic_local')
class FAMTAtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` is atomic (write, fsync, rename)."""

    def put(self, obj: bytes, filepath) -> None:
        if '://' in str(filepath):
            raise ValueError(f"backend 'famt_atomic_local' writes local files only, got "
                             f'{filepath}; drop backend_args for remote storage')
        atomic_write_bytes(obj, filepath, self._write)

    def _write(self, f, data: bytes) -> None:
        f.write(data)


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from (a short reason), or None if it loads.

    A torch zip checkpoint is checked member by member against its CRCs (reads
    the file once, no tensors built), then its records are unpickled with the
    storages memory-mapped; any other file is loaded in full. Both read it as data
    (``famt_mm.checkpoint_io``): a file naming types outside the allow-list is not a broken
    one to skip, it raises ``UnsafeCheckpointError``.
    """
    if not osp.isfile(path):
        return 'file does not exist'
    if osp.getsize(path) == 0:
        return 'empty file'
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                return f'corrupt member {bad}'
            ckpt = load_checkpoint_safely(path, map_location='cpu', mmap=True)
        else:
            ckpt = load_checkpoint_safely(path, map_location='cpu')
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # noqa: BLE001  (any reason it does not load)
        return f'{type(e).__name__}: {str(e)[:160]}'
    if not isinstance(ckpt, dict) or 'meta' not in ckpt or 'state_dict' not in ckpt:
        return 'not an mmengine training checkpoint (no meta / state_dict)'
    return None


def _candidates(work_dir: str, latest: Optional[str]) -> List[str]:
    dirs = {osp.abspath(work_dir)}
    if latest:
        dirs.add(osp.dirname(osp.abspath(latest)))
    files = [p for d in dirs for p in glob.glob(osp.join(d, '*.pth'))
             if CKPT_NAME.match(osp.basename(p))]

    def key(p):
        kind, step = CKPT_NAME.match(osp.basename(p)).groups()
        return (osp.getmtime(p), int(step))
    return sorted(files, key=key, reverse=True)


def newest_loadable_checkpoint(work_dir: str) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """(checkpoint to resume from or None, [(skipped file, reason), ...]).

    Tries the file ``work_dir/last_checkpoint`` names, then the ``epoch_N.pth`` /
    ``iter_N.pth`` files beside it and in ``work_dir``, newest first. Raises
    ``RuntimeError`` when there are checkpoints but none of them loads: starting
    from scratch then would silently throw the run away.
    """
    latest = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        latest = open(pointer).read().strip() or None
    order = ([latest] if latest else []) + [
        p for p in _candidates(work_dir, latest)
        if not latest or osp.abspath(p) != osp.abspath(latest)]
    skipped = []
    for path in order:
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    if skipped:
        raise RuntimeError(
            f'resume: no checkpoint in {work_dir} loads: ' + '; '.join(
                f'{p} ({why})' for p, why in skipped) + '. Remove them to start from scratch, '
            'or resume from another file with --resume PATH')
    return None, skipped


def resume_warning(good: Optional[str], skipped: List[Tuple[str, str]]) -> Optional[str]:
    """The warning to log when resuming skipped broken checkpoints (None if none)."""
    if not skipped:
        return None
    bad = ', '.join(f'{p} ({why})' for p, why in skipped)
    return (f'resume: the latest checkpoint does not load: {bad}; resuming from {good}, '
            'the newest one that does')
