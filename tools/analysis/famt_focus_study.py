"""Object focus of FAMT's weight terms (attention, frequency, A x F) on encoders of several
training lengths, sizes and a supervised one (docs/evaluation.md).

    python tools/analysis/famt_focus_study.py --experiment-dir work_dirs/famt_probe_experiment \
        --out-dir work_dirs/famt_focus_study

The code lives in famt_mm/analysis/focus_study.py; this file is its command line.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--experiment-dir', help='out dir of mae_vs_famt_probe.py: its MAE '
                   'snapshots give the training-length rows')
    p.add_argument('--out-dir', default='work_dirs/famt_focus_study')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--size-epochs', type=int, default=12)
    p.add_argument('--sizes', nargs='*', default=None, help='subset of the sizes (names)')
    p.add_argument('--supervised-epochs', type=int, default=15)
    p.add_argument('--supervised-images', type=int, default=None,
                   help='train the supervised encoder on this many images (default: the '
                   'pre-training images)')
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from famt_mm.analysis import focus_study
    sizes = focus_study.SIZES if args.sizes is None else args.sizes
    return focus_study.run_study(args.out_dir, args.experiment_dir, args.seed, args.size_epochs,
                                 args.supervised_epochs, sizes, log=lambda s: print(s, flush=True),
                                 supervised_images=args.supervised_images)


if __name__ == '__main__':
    main()
