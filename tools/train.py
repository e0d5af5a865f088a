"""Train a model from an mmpretrain, mmdet or mmseg config (its ``default_scope`` decides).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--auto-scale-lr] [--cfg-options k=v ...]
                                 [--launcher none|pytorch|slurm] [--allow-cpu]

On a machine without a GPU, AMP / nccl settings fall back to fp32 / gloo with a
warning, so one config serves CPU tests and GPU runs. On a machine whose NVIDIA GPU
this torch cannot use, it stops naming the cause; --allow-cpu (or FAMT_ALLOW_CPU=1)
runs on the CPU anyway. An mmdet / mmseg config stops at start when mmcv has no
compiled ops (``bash tools/install.sh --with-ops``).
"""
import argparse
import os
import os.path as osp
import sys

SMALL_MACHINE_CPUS = 4


def small_machine_env(environ, cpus):
    """Settings for a machine with fewer than SMALL_MACHINE_CPUS usable CPUs, where the user
    has set none: OpenMP threads that wait sleep (OMP_WAIT_POLICY=PASSIVE) instead of
    spinning, so that a job sharing the cores does not stall every parallel region (README,
    Quick start: a fifth of the CPU time for the same steps on a shared 2-core machine).
    OpenMP reads it when torch loads: set before the first import of torch."""
    if cpus >= SMALL_MACHINE_CPUS or 'OMP_WAIT_POLICY' in environ:
        return {}
    return {'OMP_WAIT_POLICY': 'PASSIVE'}


def usable_cpus():
    return (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
            else os.cpu_count() or 1)


def fit_workers_to_cpus(cfg, cpus):
    """On a machine with fewer than SMALL_MACHINE_CPUS usable CPUs, at most ``cpus - 1``
    data-loader workers per loader, so the model's threads keep a core (README, Quick start);
    the message for the log, or None."""
    if cpus >= SMALL_MACHINE_CPUS:
        return None
    changed = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) and cfg[loader].get('num_workers', 0) > cpus - 1:
            changed.append(f"{loader}.num_workers {cfg[loader]['num_workers']} -> {cpus - 1}")
            cfg[loader]['num_workers'] = cpus - 1
            if cpus - 1 == 0:
                cfg[loader]['persistent_workers'] = False  # torch refuses it without workers
    return (f'{cpus} usable CPUs: ' + ', '.join(changed) + ' (the model keeps a core)'
            if changed else None)


os.environ.update(small_machine_env(os.environ, usable_cpus()))
from mmengine.config import Config, DictAction  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from famt_mm.compat import (adapt_cfg_to_device, init_cpu_distributed,  # noqa: E402
                            require_mmcv_ops, unresolvable_package_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest checkpoint '
        'in the work dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic mixed precision (GPU only)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual total batch size')
    parser.add_argument('--no-pin-memory', action='store_true')
    parser.add_argument('--no-persistent-workers', action='store_true')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, e.g. train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--allow-cpu', action='store_true',
                        help='train on the CPU even though an NVIDIA GPU is present but '
                        'unusable (as FAMT_ALLOW_CPU=1)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Fold the command-line flags into the config."""
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: checkpoint {args.resume} does not exist')
        cfg.resume = True
        cfg.load_from = args.resume
    if args.no_validate:
        for key in ('val_cfg', 'val_dataloader', 'val_evaluator'):
            cfg[key] = None
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise ValueError('--auto-scale-lr: the config has no `auto_scale_lr` '
                             '(base_batch_size) to scale from')
        cfg.auto_scale_lr.enable = True
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) is None:
            continue
        if args.no_pin_memory:
            cfg[loader]['pin_memory'] = False
        if args.no_persistent_workers:
            cfg[loader]['persistent_workers'] = False
        if cfg[loader].get('num_workers', 0) == 0:
            cfg[loader]['persistent_workers'] = False  # torch refuses it
    return cfg


def build_runner(cfg):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from famt_mm.recipe import drop_collate_scope
    drop_collate_scope(cfg)  # an inherited recipe's collate_fn: see famt_mm/recipe.py
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def load_config(path):
    """The config, its ``custom_imports`` imported once the stack can take them."""
    from mmengine.utils import import_modules_from_strings
    try:
        cfg = Config.fromfile(path, import_custom_modules=False)
    except ModuleNotFoundError as e:
        why = unresolvable_package_config(e, path)
        if why is None:
            raise
        raise RuntimeError(why) from None
    require_mmcv_ops(cfg)  # before custom_imports, which would import mmdet / mmseg models
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    cfg = merge_args(cfg, args)
    workers_note = fit_workers_to_cpus(cfg, usable_cpus())
    adapt_cfg_to_device(cfg, args.launcher, allow_cpu=args.allow_cpu or None)
    from famt_mm.datasets.dataset_checks import check_dataset_files
    check_dataset_files(cfg)  # ImageNet subsets, empty annotation files: the fix named
    import torch
    if args.launcher != 'none' and not torch.cuda.is_available():
        init_cpu_distributed(
            args.launcher, timeout=cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout'))
    # --resume / resume=True: skip a latest checkpoint that does not load (docs/design.md,
    # Reliability); a good latest file leaves mmengine's own auto-resume untouched.
    resume_note = None
    if cfg.get('resume') and not cfg.get('load_from'):
        from famt_mm.engine.checkpointing import newest_loadable_checkpoint, resume_warning
        good, skipped = newest_loadable_checkpoint(cfg.work_dir)
        if skipped:
            cfg.load_from = good
        resume_note = resume_warning(good, skipped)
    runner = build_runner(cfg)
    from famt_mm.engine.hooks import ResumeBatchCheckHook
    if not any(isinstance(hook, ResumeBatchCheckHook) for hook in runner.hooks):
        runner.register_hook(ResumeBatchCheckHook())  # names a resume with another batch
    if workers_note:
        runner.logger.info(workers_note)
    if resume_note:
        runner.logger.warning(resume_note)
    if args.resume == 'auto':
        from mmengine.runner import find_latest_checkpoint
        if find_latest_checkpoint(runner.work_dir) is None:
            # mmengine would only log "resumed from the latest checkpoint None"
            runner.logger.warning(
                f'--resume: no checkpoint found in {runner.work_dir} (no last_checkpoint '
                'file): starting from scratch')
    runner.train()


if __name__ == '__main__':
    main()
