"""FAMT's extra host work per training step: the batch's bank rows and crop records.

    python tools/analysis/benchmark_step_rows.py [--batch 512] [--images 1281167]
        [--grid 14] [--dtype float16|uint8] [--steps 20] [--dir DIR] [--out result.json]

Per step FAMT (``FAMTMaskGenerator.crop_weights``) does on the host: one Python pass over
the data samples (``batch_meta``: index, crop box, flip, B x 6 float64) and, for a file
bank, one vectorised gather of the batch's rows from the memmap (``WeightBank.get_rows``;
on a GPU into page-locked memory, copied without blocking). An inline bank is indexed on
the device: no host gather. Everything after (dequantise, crop mapping, the draw) runs on
the device. Measured here, per step (median of ``--steps`` batches of random indices, as a
shuffled sampler gives):

* ``meta``: ``batch_meta`` of ``--batch`` data samples packed by the ImageNet config's own
  pipeline (FAMTRandomResizedCrop + RandomFlip + PackInputs);
* ``rows_file_warm``: ``get_rows`` of a bank file of ``--images`` maps in the page cache;
* ``rows_file_cold``: the same on a freshly mapped file whose pages
  ``posix_fadvise(DONTNEED)`` evicted first (a resumed run before anything read the file);
* bytes per step moved host -> device (rows + meta) for each storage.

The bank file is written to ``--dir`` (default: a temporary directory) and deleted.
"""
import argparse
import gc
import json
import os
import os.path as osp
import platform
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=512)
    parser.add_argument('--images', type=int, default=1281167, help='bank rows (ImageNet-1K)')
    parser.add_argument('--grid', type=int, default=14, help='h = w of the maps (ViT-B/16)')
    parser.add_argument('--dtype', choices=['float16', 'uint8'], default='float16')
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--config', default=osp.join(REPO, 'configs', 'famt_mae_vit-b_in1k.py'))
    parser.add_argument('--dir', default=None, help='where the bank file is written')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    return parser.parse_args(argv)


def write_bank(path, n, grid, dtype, seed):
    """A bank file of ``n`` random quantised maps (``write_bank_file``'s format)."""
    from famt_mm.bank import write_bank_file
    rng = np.random.default_rng(seed)
    if dtype == 'float16':
        maps = (rng.random((n, grid, grid), dtype=np.float32) * 0.99 + 0.01).astype(np.float16)
    else:
        maps = rng.integers(1, 256, (n, grid, grid), dtype=np.uint8)
    return write_bank_file(path, torch.from_numpy(maps))


def evict(path):
    """Drop the file's pages from the page cache (clean, unmapped pages; no root needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def median_ms(fn, steps, before=None):
    """(median, min, max) milliseconds of ``fn(i)``; ``before(i)`` runs untimed first."""
    times = []
    for i in range(steps):
        if before is not None:
            before(i)
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), 1e3 * min(times), 1e3 * max(times)


def run(args):
    from benchmark_pretrain import famt_data_samples
    from famt_mm.bank import WeightBank
    from famt_mm.models import FAMTMaskGenerator
    torch.set_num_threads(1)
    gen = FAMTMaskGenerator()
    batches = famt_data_samples(args.config, 224, args.batch, 2, args.images, args.seed)
    rng = np.random.default_rng(args.seed)
    indices = [torch.from_numpy(rng.integers(0, args.images, args.batch)).long()
               for _ in range(args.steps)]
    grid = (args.grid, args.grid)
    result = dict(batch=args.batch, images=args.images, grid=grid, dtype=args.dtype,
                  steps=args.steps, cpu=platform.processor() or platform.machine(),
                  torch=torch.__version__, load_avg_before=os.getloadavg())
    result['meta_ms'] = median_ms(lambda i: gen.batch_meta(batches[i % 2]), args.steps)
    tmp = tempfile.mkdtemp(dir=args.dir)
    path = osp.join(tmp, 'bank.npy')
    try:
        sha1 = write_bank(path, args.images, args.grid, args.dtype, args.seed)
        result['bank_file_bytes'] = osp.getsize(path)
        bank = WeightBank.from_file(path, sha1, 0)
        expected = torch.from_numpy(np.asarray(bank.maps.numpy()[indices[0].numpy()]))
        assert torch.equal(bank.get_rows(indices[0], 'cpu'), expected)
        np.asarray(bank.maps.numpy()).sum(dtype=np.float64)  # read once: every page cached
        result['rows_file_warm_ms'] = median_ms(lambda i: bank.get_rows(indices[i], 'cpu'),
                                                args.steps)
        del bank  # unmapped: a mapped page stays cached whatever fadvise says
        cold = []

        def reopen_cold(i):  # a resumed run: the file freshly mapped, nothing of it cached
            cold.clear()
            gc.collect()
            evict(path)
            fresh = WeightBank.from_file(path, sha1, 0)
            cold.append(fresh)
        result['rows_file_cold_ms'] = median_ms(lambda i: cold[0].get_rows(indices[i], 'cpu'),
                                                args.steps, before=reopen_cold)
        cold.clear()
        gc.collect()
    finally:
        shutil.rmtree(tmp)
    itemsize = np.dtype(args.dtype).itemsize
    meta_bytes = args.batch * 6 * 8
    result['bytes_per_step'] = dict(
        file=args.batch * args.grid * args.grid * itemsize + meta_bytes, inline=meta_bytes)
    result['host_ms_per_step'] = dict(
        file_warm=result['meta_ms'][0] + result['rows_file_warm_ms'][0],
        file_cold=result['meta_ms'][0] + result['rows_file_cold_ms'][0],
        inline=result['meta_ms'][0])
    result['load_avg_after'] = os.getloadavg()
    return result


def main(argv=None):
    args = parse_args(argv)
    r = run(args)
    print(f"batch {r['batch']}, bank {r['images']} x {r['grid'][0]} x {r['grid'][1]} "
          f"{r['dtype']} ({r['bank_file_bytes'] / 2**20:.0f} MiB file), load average "
          f"{r['load_avg_before'][0]:.1f} -> {r['load_avg_after'][0]:.1f}")
    for key in ('meta_ms', 'rows_file_warm_ms', 'rows_file_cold_ms'):
        med, lo, hi = r[key]
        print(f'{key}: median {med:.3f} (min {lo:.3f}, max {hi:.3f})')
    print('host ms per step: ' + ', '.join(f'{k} {v:.3f}'
                                          for k, v in r['host_ms_per_step'].items()))
    print('bytes per step: ' + ', '.join(f'{k} {v}' for k, v in r['bytes_per_step'].items()))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(r, f, indent=1)


if __name__ == '__main__':
    main()
