"""Measure the FAMT weight bank at scale: refresh gather and write, checkpoint size, get_rows
per batch, and the memory of two processes reading one bank file (docs/design.md "The weight
bank at scale").

    python tools/analysis/bank_scale.py --images 1281167 --dtype float16 --dir /tmp/famt_bank_scale

``--no-gather`` writes the file from generated chunks instead (a bank larger than memory); the
file is deleted at the end unless ``--keep``.
"""
import argparse
import io
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np
import torch

from famt_mm.bank import WeightBank, file_checksum, gather_by_index, write_bank_chunks

READER = """
import sys, time, numpy as np
def mem():
    f = dict((l.split()[0].rstrip(':'), int(l.split()[1]) * 1024)
             for l in open('/proc/self/smaps_rollup') if l.strip().endswith('kB'))
    return f['Rss'], f['Private_Clean'] + f['Private_Dirty']
path, batches, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rss0, uss0 = mem()
mm = np.load(path, mmap_mode='r', allow_pickle=False)
rng = np.random.default_rng(int(sys.argv[4]))
t0 = time.perf_counter()
for _ in range(batches):
    rows = mm[np.sort(rng.integers(0, mm.shape[0], batch))]
dt = (time.perf_counter() - t0) / batches
rss, uss = mem()
print(dt, rss - rss0, uss - uss0, flush=True)
sys.stdin.readline()
"""


def _maps_chunk(start, stop, hw, dtype):
    g = torch.Generator().manual_seed(start)
    if dtype == 'uint8':
        return torch.randint(1, 256, (stop - start, *hw), generator=g, dtype=torch.uint8)
    return (torch.rand(stop - start, *hw, generator=g) + 0.01).half()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--images', type=int, default=1281167)
    ap.add_argument('--grid', type=int, default=14)
    ap.add_argument('--dtype', default='float16', choices=['float16', 'uint8'])
    ap.add_argument('--dir', default='/tmp/famt_bank_scale')
    ap.add_argument('--no-gather', action='store_true')
    ap.add_argument('--batches', type=int, default=200)
    ap.add_argument('--keep', action='store_true')
    args = ap.parse_args()
    n, hw = args.images, (args.grid, args.grid)
    nbytes = n * hw[0] * hw[1] * (2 if args.dtype == 'float16' else 1)
    path = osp.join(args.dir, f'bank_epoch_0040.{args.dtype}.npy')
    out = dict(images=n, dtype=args.dtype, bank_GiB=nbytes / 2**30)
    step = 1 << 18
    if not args.no_gather:
        maps = torch.cat([_maps_chunk(i, min(i + step, n), hw, args.dtype)
                          for i in range(0, n, step)])
        t0 = time.perf_counter()
        bank = gather_by_index(torch.arange(n), maps, n)  # a world of 1: the scatter only
        out['gather_s'] = time.perf_counter() - t0
        del maps
        chunks = (bank[i:i + step].numpy() for i in range(0, n, step))
    else:
        chunks = (_maps_chunk(i, min(i + step, n), hw, args.dtype).numpy()
                  for i in range(0, n, step))
    t0 = time.perf_counter()
    sha1 = write_bank_chunks(path, (n, *hw), args.dtype, chunks)
    out['write_with_sha1_s'] = time.perf_counter() - t0
    if not args.no_gather:
        del bank, chunks
    t0 = time.perf_counter()
    assert file_checksum(path)[0] == sha1
    out['verify_sha1_s'] = time.perf_counter() - t0
    wb = WeightBank.from_file(path, sha1, 40)
    buf = io.BytesIO()
    torch.save(dict(famt=wb.state_dict('f' * 40)), buf)
    out['ckpt_famt_bytes_now'] = buf.tell()
    out['ckpt_famt_bytes_before'] = nbytes  # the inline bank: the maps' bytes (+ < 1 KB)
    idx = torch.randint(0, n, (512, ))
    t0 = time.perf_counter()
    for _ in range(args.batches):
        wb.get_rows(torch.randint(0, n, (512, )), 'cpu')
    out['get_rows_512_ms'] = 1e3 * (time.perf_counter() - t0) / args.batches
    del idx
    procs = [subprocess.Popen([sys.executable, '-c', READER, path, str(args.batches), '512',
                               str(s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for s in range(2)]
    readers = [[float(v) for v in p.stdout.readline().split()] for p in procs]
    for p in procs:
        p.communicate('\n')
    out['reader_get_rows_512_ms'] = [1e3 * r[0] for r in readers]
    out['reader_rss_MiB'] = [r[1] / 2**20 for r in readers]
    out['reader_uss_MiB'] = [r[2] / 2**20 for r in readers]
    if not args.keep:
        os.remove(path)
    for k, v in out.items():
        print(f'{k}: {v}')


if __name__ == '__main__':
    main()
