"""Evaluate a checkpoint with an mmpretrain, mmdet or mmseg config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
                         [--cfg-options k=v ...] [--launcher none|pytorch|slurm]
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from famt_mm.compat import adapt_cfg_to_device, init_cpu_distributed  # noqa: E402
from tools.train import build_runner, load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='write the metrics to this .json file')
    parser.add_argument('--amp', action='store_true', help='test with AMP (GPU only)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, e.g. test_dataloader.batch_size=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.out and not args.out.endswith('.json'):  # famt_mm writes no pickles
        raise ValueError(f'--out {args.out}: the metrics are written as JSON, name a .json file')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_config(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if cfg.get('test_dataloader') is None or cfg.get('test_evaluator') is None:
        raise ValueError(f'{args.config} has no test_dataloader/test_evaluator '
                         '(a pre-training config cannot be tested; use an '
                         'evaluation config)')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    adapt_cfg_to_device(cfg, args.launcher)
    from famt_mm.datasets.dataset_checks import check_dataset_files
    check_dataset_files(cfg)  # ImageNet subsets, empty annotation files: the fix named
    if args.launcher != 'none':
        import torch
        if not torch.cuda.is_available():
            init_cpu_distributed(
                args.launcher, timeout=cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout'))
    runner = build_runner(cfg)
    metrics = runner.test()
    if args.out:
        from mmengine.fileio import dump
        dump({k: float(v) if hasattr(v, '__float__') else v for k, v in metrics.items()},
             args.out, file_format='json')
    return metrics


if __name__ == '__main__':
    main()
