"""The data budget: training pipelines in images/s per CPU core, and CPU cores per GPU.

    python tools/analysis/benchmark_data.py [--root DIR] [--images 300] [--repeats 3]
        [--workers 1 2] [--decoders cv2 pillow pillow-draft cv2-reduced torchvision]
        [--gpu-rates MAE FAMT] [--gpu [--gpu-batch 256]] [--out result.json]

Generates ``--images`` JPEGs with ImageNet-1K's sizes and file sizes in ``--root`` (kept for
the next run; ``famt_mm.datasets.make_imagenet_like_jpegs``), then measures, with
``famt_mm.analysis.data_budget``:

* one process, one thread: mmpretrain's MAE ImageNet pipeline, FAMT's (``famt_pipeline``),
  FAMT's with each ``decode=`` switch, and the CPU side of the GPU decoding path, in
  ``--repeats`` rounds (each round visits every pipeline; run under ``taskset -c K`` to pin),
  as images per CPU second of the process (its cost) and per wall second;
* full-size decoding alone per decoder (and Pillow at 1/2, 1/4 scale);
* ``--workers N ...``: MAE's, FAMT's and the fastest ``decode=`` pipeline with N processes;
* ``--gpu``: the GPU side (``decode_crop_batch`` on CUDA, nvJPEG) in images/s.

Cores per GPU = the GPU's step rate (``--gpu-rates``; default: the figures issue 21 quotes,
ViT-B/16, one H200, batch 512, bf16: MAE 3629 img/s, FAMT 5398 img/s) / img/s per core.
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from famt_mm.analysis import data_budget as db  # noqa: E402
from famt_mm.datasets import DECODERS, make_imagenet_like_jpegs  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Data pipelines: img/s per core, cores/GPU')
    parser.add_argument('--root', default='work_dirs/imagenet_like_jpegs')
    parser.add_argument('--images', type=int, default=300)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--workers', type=int, nargs='*', default=[],
                        help='also measure with these numbers of worker processes')
    parser.add_argument('--decoders', nargs='*', default=list(DECODERS), choices=DECODERS)
    parser.add_argument('--gpu-rates', type=float, nargs=2, metavar=('MAE', 'FAMT'),
                        default=None, help='GPU step rates, img/s (default: issue 21\'s)')
    parser.add_argument('--gpu', action='store_true', help='measure the GPU decoding side')
    parser.add_argument('--gpu-batch', type=int, default=256)
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    return parser.parse_args(argv)


def load_info() -> str:
    try:
        return 'load average ' + ' '.join(open('/proc/loadavg').read().split()[:3])
    except OSError:
        return 'load average unknown'


def main(argv=None):
    args = parse_args(argv)
    paths = sorted(glob.glob(osp.join(args.root, '*', '*.JPEG')))
    if len(paths) < args.images:
        paths = make_imagenet_like_jpegs(args.root, args.images, args.seed)
    paths = paths[:args.images]
    sizes = [os.path.getsize(p) for p in paths]
    gpu_rates = dict(zip(('mae', 'famt'), args.gpu_rates)) if args.gpu_rates \
        else db.ISSUE_21_GPU_RATES
    result = dict(setup=dict(images=len(paths), mean_kb=sum(sizes) / len(sizes) / 1e3,
                             cpu=platform.processor() or platform.machine(),
                             cores=os.cpu_count(), affinity=sorted(os.sched_getaffinity(0)),
                             load_before=load_info(), gpu_rates=gpu_rates))
    print(f"[benchmark_data] {len(paths)} JPEGs, {result['setup']['mean_kb']:.0f} KB mean; "
          f"{result['setup']['load_before']}; cores allowed {result['setup']['affinity']}")
    configs = db.pipelines(args.decoders)
    result['single_core'] = db.single_core_rates(configs, paths, args.repeats)
    result['decode_only'] = db.decode_only_rates(paths, args.repeats)
    result['reduction_shares'] = db.reduction_shares(paths)
    cpu_rates = result['single_core']['cpu']
    cpu_decodes = [n for n in cpu_rates if n.startswith('famt decode=')]
    fastest = max(cpu_decodes, key=lambda n: db.median(cpu_rates[n]), default='famt')
    result['workers'] = {name: {n: db.worker_rate(configs[name], paths, n) for n in args.workers}
                         for name in ('mae', 'famt', fastest)} if args.workers else {}
    if args.gpu:
        result['gpu_decode'] = db.gpu_path_rate(paths, args.gpu_batch)
    result['setup']['load_after'] = load_info()

    print('images per CPU second (the cost; other jobs on the core do not count):')
    print('\n'.join(db.budget_table(cpu_rates, gpu_rates)))
    print('\nimages per wall second (one pinned process; other jobs on the core count):')
    print('\n'.join(db.budget_table(result['single_core']['wall'], gpu_rates)))
    print('\n| decoding alone, full size unless said | images per CPU second (median; range) |\n'
          '| --- | --- |')
    for name, values in result['decode_only'].items():
        print(f'| {name} | {db.median(values):.0f} ({min(values):.0f}-{max(values):.0f}) |')
    print('\npillow-draft DCT factors used: ' + ', '.join(
        f'1/{k}: {v:.0%}' for k, v in result['reduction_shares'].items()))
    for name, by_n in result['workers'].items():
        print(f'{name} with workers: ' + ', '.join(
            f'{n}: {rate:.0f} img/s ({rate / n:.0f} per worker)' for n, rate in by_n.items()))
    if args.gpu:
        print(f"GPU side (decode_crop_batch, batch {args.gpu_batch}): "
              f"{db.median(result['gpu_decode']):.0f} img/s")
    print(f"[benchmark_data] {result['setup']['load_after']}")
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
