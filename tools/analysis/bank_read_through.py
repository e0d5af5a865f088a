"""What reading a bank file once sequentially costs, and what it saves the first epoch.

    python tools/analysis/bank_read_through.py DIR [--rows 100000] [--grid 14] [--batch 512]

Writes an N x grid x grid float16 bank file in DIR, drops it from the page cache
(posix_fadvise DONTNEED: works without root for a clean file), then measures (1) one epoch of
batch row lookups in random order on the cold file, as the first epoch after a resume did, (2)
the sequential read-through ``FileBankStorage.open(verify=True)`` / ``check`` do, from
cold, and (3) the same random epoch after it. Each cold measurement drops the cache first.
"""
import argparse
import os
import os.path as osp
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from famt_mm.bank import file_checksum, open_bank_file, write_bank_file  # noqa: E402


def drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def random_epoch(path: str, batch: int, seed: int = 0):
    """Seconds and major page faults to look up every row once, ``batch`` random rows at a
    time (as get_rows)."""
    mm = open_bank_file(path)
    order = np.random.default_rng(seed).permutation(mm.shape[0])
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    t0 = time.perf_counter()
    for i in range(0, len(order), batch):
        torch.from_numpy(mm[order[i:i + batch]])
    return (time.perf_counter() - t0,
            resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('dir')
    parser.add_argument('--rows', type=int, default=100000)
    parser.add_argument('--grid', type=int, default=14)
    parser.add_argument('--batch', type=int, default=512)
    args = parser.parse_args(argv)
    path = osp.join(args.dir, 'bank_epoch_0000.float16.npy')
    maps = torch.rand(args.rows, args.grid, args.grid).half()
    write_bank_file(path, maps)
    mib = os.path.getsize(path) / 2**20
    drop_cache(path)
    cold = random_epoch(path, args.batch)
    drop_cache(path)
    t0 = time.perf_counter()
    file_checksum(path)
    read = time.perf_counter() - t0
    warm = random_epoch(path, args.batch)
    t0 = time.perf_counter()
    file_checksum(path)
    reread = time.perf_counter() - t0
    print(f'bank {args.rows} x {args.grid} x {args.grid} float16, {mib:.1f} MiB, batch '
          f'{args.batch}:\n'
          f'  random-order epoch of row lookups, cold file: {cold[0]:.3f} s, {cold[1]} major '
          'page faults\n'
          f'  sequential read-through + SHA-1, cold: {read:.3f} s ({mib / read:.0f} MiB/s); '
          f'from the page cache: {reread:.3f} s\n'
          f'  random-order epoch after the read-through: {warm[0]:.3f} s, {warm[1]} major page '
          'faults')
    os.remove(path)


if __name__ == '__main__':
    main()
