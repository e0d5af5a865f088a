"""The CPU probe experiment: MAE, FAMT and its controls at equal time and equal epochs.

    python tools/analysis/mae_vs_famt_probe.py --table main --seeds 0 1 2 3 4 --jobs 2 \
        --curve-fracs --out-dir work_dirs/famt_probe_main
    python tools/analysis/mae_vs_famt_probe.py --seeds 0 1 2 --jobs 3 \
        --out-dir work_dirs/famt_probe_experiment

For each seed: MAE (configs/mae_vit-micro-p4_probe.py) pre-trains ``--epochs`` epochs; its CPU
seconds are that seed's time budget. Then every other method of the table
(configs/famt_mae_vit-micro-p4_probe.py) pre-trains once for that time and once for
``--epochs`` epochs. ``--table main``: FAMT (A x F), random masking at FAMT's token budget,
the oracle weights from the objects' masks and their inverse, and FAMT whose warm-up throws
too; ``--table ablations`` (the default): FAMT (A x F), attention only, frequency only, A x F
without throwing, random masking at FAMT's budget. Every checkpoint (and MAE's initial
weights: "random init") gets a linear and a k-NN probe on frozen features. Results per run in
``<out-dir>/seed<s>/*.json`` (a rerun resumes), summary in results.json / results.md (with the
paired differences against MAE and against the budget control, 95% t intervals), learning
curves in curves.png.
Details: docs/evaluation.md ("The CPU probe experiment"). The code lives in
famt_mm/analysis/; this file is its command line.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import DictAction  # noqa: E402

#: --quick: a micro-micro model on 40 images, 2 epochs (the CI smoke test)
QUICK_OPTIONS = {
    'model.backbone.arch': dict(embed_dims=32, num_layers=2, num_heads=2,
                                feedforward_channels=64),
    'model.neck.embed_dim': 32,
    'model.neck.decoder_embed_dim': 16,
    'model.neck.decoder_num_heads': 2,
    'train_dataloader.batch_size': 8,
    'train_dataloader.dataset.num_samples': 40,
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--out-dir', default='work_dirs/famt_probe_experiment')
    p.add_argument('--jobs', type=int, default=1,
                   help='seeds run in parallel, one process (one torch thread) each')
    p.add_argument('--epochs', type=int, default=24, help='epochs of the equal-epoch runs')
    p.add_argument('--clock', choices=('cpu', 'wall'), default='cpu',
                   help="time budgets in this process's CPU seconds (other jobs on a shared "
                        'machine move them by about 15%%, not 3x) or in wall-clock seconds')
    p.add_argument('--num-test', type=int, default=1000, help="probe test images (split 'test')")
    p.add_argument('--famt-start-frac', type=float, default=0.25,
                   help='FAMT starts after this share of --epochs (at least 1)')
    p.add_argument('--famt-interval-frac', type=float, default=0.25,
                   help='FAMT refreshes its weights every this share of --epochs (at least 1)')
    p.add_argument('--warmup-frac', type=float, default=0.1, help='lr warm-up share of a budget')
    p.add_argument('--curve-fracs', type=float, nargs='*', default=[0.1, 0.25, 0.5, 0.75],
                   help='shares of the budget at which MAE and FAMT are probed for the curves')
    p.add_argument('--l2-grid', type=float, nargs='+', default=[1e-4, 1e-3, 1e-2])
    p.add_argument('--knn-k', type=int, default=20)
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads per process')
    p.add_argument('--quick', action='store_true',
                   help='tiny model, 40 images, 2 epochs, 24 test images: a smoke test')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides applied to both pre-training configs')
    p.add_argument('--table', choices=('main', 'ablations'), default='ablations',
                   help='the methods to run: main (MAE, FAMT, budget control, oracle, inverted '
                        'oracle, warm-up throw) or ablations (MAE, FAMT, its terms alone, no '
                        'throw, budget control)')
    p.add_argument('--methods', nargs='+', default=None,
                   help='run only these methods instead of --table (names as in the table; '
                        'MAE always runs)')
    p.add_argument('--no-report', action='store_true', help='run the seeds, skip the summary')
    p.add_argument('--report-only', action='store_true',
                   help='only summarise the run jsons already in --out-dir')
    args = p.parse_args(argv)
    if args.quick:
        args.cfg_options = {**QUICK_OPTIONS, **(args.cfg_options or {})}
        args.epochs = 2
        args.num_test = min(args.num_test, 24)
    return args


def settings_of(args):
    keys = ('epochs', 'clock', 'num_test', 'famt_start_frac', 'famt_interval_frac',
            'warmup_frac', 'curve_fracs', 'l2_grid', 'knn_k', 'threads', 'quick', 'cfg_options')
    return {k: getattr(args, k) for k in keys}


def main(argv=None):
    args = parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    import torch
    torch.set_num_threads(args.threads)
    from famt_mm.analysis import experiment
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    settings = settings_of(args)
    t0 = time.perf_counter()
    if not args.report_only:
        if args.jobs > 1 and len(args.seeds) > 1:  # one child process per seed
            base = [a for a in argv if a not in ('--no-report',)]
            pending, running = list(args.seeds), []
            while pending or running:
                while pending and len(running) < args.jobs:
                    seed = pending.pop(0)
                    cmd = [sys.executable, osp.abspath(__file__), *base, '--jobs', '1',
                           '--no-report', '--seeds', str(seed)]
                    running.append(subprocess.Popen(cmd))
                time.sleep(1)
                for proc in [r for r in running if r.poll() is not None]:
                    running.remove(proc)
                    if proc.returncode:
                        raise SystemExit(f'{proc.args}: exit status {proc.returncode}')
        else:
            for seed in args.seeds:
                experiment.run_seed(seed, out_dir, settings,
                                    log=lambda s: print(s, flush=True),
                                    methods=args.methods or experiment.TABLES[args.table])
    if not args.no_report:
        result = experiment.report(out_dir, settings)
        print(f"\n{osp.join(out_dir, 'results.md')} ({time.perf_counter() - t0:.0f} s)")
        return result


if __name__ == '__main__':
    main()
