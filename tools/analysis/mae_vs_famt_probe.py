"""MAE vs FAMT pre-training at the same wall-clock budget, then the same linear probe.

    python tools/analysis/mae_vs_famt_probe.py --budget-s 90 --seeds 0 1 2 \
        --out-dir work_dirs/mae_vs_famt

A small, CPU-sized experiment on the embedded ``SyntheticObjects`` dataset.
For every seed, in this order (so that a load change on a shared machine hits
both methods alike):

1. MAE (``configs/mae_vit-t_demo.py``: mmpretrain's MAE, random masking 0.75)
   pre-trains for ``--budget-s`` seconds of training wall-clock;
2. FAMT (``configs/famt_mae_vit-t_demo.py``) pre-trains for the same budget.
   Its schedule is scaled to the epochs MAE reached with this seed (E):
   random masking for ``round(--famt-start-frac x E)`` epochs (at least 1),
   then FAMT masking and throwing, the weight bank refreshed every
   ``round(--famt-interval-frac x E)`` epochs (at least 1). The refresh passes
   run inside FAMT's budget: they are part of its cost;
3. a linear probe of each checkpoint, and of the MAE run's initial weights
   ("random init": what pre-training starts from), on the dataset's labels.

Budget. ``BudgetedEpochBasedTrainLoop`` (below) is mmengine's epoch loop that
stops after the first iteration that ends past the budget (mid-epoch), saves
that final checkpoint (outside the budget), and drives the learning rate from
the elapsed time: linear warm-up over the first ``--warmup-frac`` of the budget,
then cosine to 0 at its end. Both methods thus run a complete schedule however
many epochs they reach. The clock starts before ``before_train`` and includes
data loading and FAMT's refreshes; the model build does not count.

Linear probe (the same for every encoder). The encoder is mmpretrain's
``VisionTransformer`` with the pre-training arch, loaded with
``StrictPretrained`` (``prefix='backbone.'``), frozen, eval mode. Features of
the whole images (no augmentation) of split 'train' (the pre-training images,
``--num-train``) and split 'test' (``--num-test`` other images): the CLS token
after the final norm (MAE's linear-probe feature) and, as a second column, the
mean of the patch tokens. Each feature is standardised with the training
set's mean / std (BatchNorm without affine, as MAE's probe), then a
multinomial logistic regression is fitted in closed form by L-BFGS (full batch,
L2 penalty chosen from ``--l2-grid`` on the last 20% of the training images,
then refitted on all of them). Deterministic given the features.

Object focus (FAMT). From the final FAMT checkpoint's weight bank (one
h x w map per training image, computed at its last refresh): the share of the
total weight on object pixels, sum(w * f) / sum(w) with f the per-patch
object coverage (``SyntheticObjects.patch_object_fraction``), against the
object's share of the area, mean(f); both averaged over the images. Uniform
weights give equal numbers.

Outputs in ``--out-dir``: ``results.json`` (settings, per-seed numbers,
summary), ``results.png`` (probe accuracy per method and seed), the run
directories (logs, checkpoints), and the table on stdout.
"""
import argparse
import json
import logging
import math
import os
import os.path as osp
import statistics
import sys
import time

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import LOOPS  # noqa: E402
from mmengine.runner import EpochBasedTrainLoop, Runner  # noqa: E402

import famt_mm  # noqa: E402,F401  (registers FAMT modules, StrictPretrained, checkpoint fix)
from famt_mm.compat import adapt_cfg_to_device, load_local_checkpoint  # noqa: E402

MAE_CONFIG = osp.join(REPO, 'configs', 'mae_vit-t_demo.py')
FAMT_CONFIG = osp.join(REPO, 'configs', 'famt_mae_vit-t_demo.py')
METHODS = ('random init', 'MAE', 'FAMT')
FEATURES = ('cls', 'avg')


# ---------------------------------------------------------------------------
# Training within a wall-clock budget
# ---------------------------------------------------------------------------
@LOOPS.register_module(force=True)
class BudgetedEpochBasedTrainLoop(EpochBasedTrainLoop):
    """Epoch-based training that stops when ``budget_s`` seconds are spent.

    The stop comes after the first iteration that ends past the budget; that
    epoch becomes the last one (hooks see ``max_epochs = epoch + 1``, so the
    checkpoint hook with ``save_last`` writes it and no FAMT refresh follows).
    The learning rate of every parameter group follows the elapsed share of
    the budget: linear warm-up from ``1e-3`` x lr over ``warmup_frac``, then
    cosine to 0. Leave ``param_scheduler`` unset.

    ``stats`` after the run: train_seconds, iters, images, epochs (fractional:
    completed epochs plus the done share of the last one), losses (per iter).
    """

    def __init__(self, runner, dataloader, budget_s: float, max_epochs: int = 100000,
                 warmup_frac: float = 0.1, init_checkpoint=None, **kwargs):
        super().__init__(runner, dataloader, max_epochs=max_epochs, **kwargs)
        if budget_s <= 0:
            raise ValueError(f'budget_s={budget_s} must be > 0')
        self.budget_s = float(budget_s)
        self.warmup_frac = float(warmup_frac)
        self.init_checkpoint = init_checkpoint
        self.stats = dict(train_seconds=0.0, iters=0, images=0, epochs=0.0, losses=[])
        self._t0 = None
        self._base_lrs = None
        self._over = False

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def lr_factor(self, frac: float) -> float:
        """Share of the base lr at ``frac`` of the budget."""
        frac = min(max(frac, 0.0), 1.0)
        if frac < self.warmup_frac:
            return 1e-3 + (1 - 1e-3) * frac / self.warmup_frac
        progress = (frac - self.warmup_frac) / max(1 - self.warmup_frac, 1e-12)
        return 0.5 * (1 + math.cos(math.pi * progress))

    def run(self):
        if self.init_checkpoint:  # the initialised weights, outside the budget
            os.makedirs(osp.dirname(osp.abspath(self.init_checkpoint)), exist_ok=True)
            torch.save({'state_dict': self.runner.model.state_dict()}, self.init_checkpoint)
        self._t0 = time.perf_counter()
        self._base_lrs = [g['lr'] for g in self.runner.optim_wrapper.param_groups]
        self.runner.call_hook('before_train')
        while not self._over and self._epoch < self._max_epochs:
            self.run_epoch()
        if not self._over:  # max_epochs reached first
            self.stats.update(train_seconds=self.elapsed(), epochs=float(self._epoch))
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self):
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = 0
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
            done += 1
            if self.elapsed() >= self.budget_s:
                self._over = True
                break
        if self._over:
            self.stats['train_seconds'] = self.elapsed()
            self.stats['epochs'] = self._epoch + done / len(self.dataloader)
            self._max_epochs = self._epoch + 1  # this epoch is the last one
            self._max_iters = self._iter
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch):
        factor = self.lr_factor(self.elapsed() / self.budget_s)
        for group, base in zip(self.runner.optim_wrapper.param_groups, self._base_lrs):
            group['lr'] = base * factor
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(data_batch, optim_wrapper=self.runner.optim_wrapper)
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs)
        self._iter += 1
        self.stats['iters'] += 1
        self.stats['images'] += len(data_batch['inputs'])
        self.stats['losses'].append(float(outputs['loss'].detach()))


def quiet_console(runner):
    """Training log (INFO) in the run's work dir, only warnings on the console."""
    for handler in runner.logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.INFO)
        elif isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.WARNING)


def pretrain_cfg(config, work_dir, seed, args, famt_schedule=None, init_checkpoint=None):
    """A demo config set up for a budgeted run."""
    cfg = Config.fromfile(config)
    ds = cfg.train_dataloader.dataset
    ds.num_samples = args.num_train
    cfg.train_dataloader.num_workers = args.num_workers
    cfg.train_dataloader.persistent_workers = args.num_workers > 0
    cfg.train_cfg = dict(type='BudgetedEpochBasedTrainLoop', budget_s=args.budget_s,
                         warmup_frac=args.warmup_frac, init_checkpoint=init_checkpoint)
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 6, save_last=True,
                                        max_keep_ckpts=1, save_param_scheduler=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    if famt_schedule is not None:
        start, interval = famt_schedule
        cfg.custom_hooks = [dict(type='FAMTWeightHook', start_epoch=start, interval=interval,
                                 num_workers=args.num_workers)]
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.log_level = 'INFO' if args.verbose else 'WARNING'  # quiet set-up; see quiet_console
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.env_cfg.dist_cfg = dict(backend='gloo')  # single process; nothing to warn about
    cfg.experiment_name = f'{osp.basename(work_dir)}_{int(time.time() * 1000)}'
    adapt_cfg_to_device(cfg)
    return cfg


def pretrain(config, work_dir, seed, args, famt_schedule=None, init_checkpoint=None):
    """Budgeted pre-training; returns the loop's stats and the final checkpoint."""
    runner = Runner.from_cfg(pretrain_cfg(config, work_dir, seed, args, famt_schedule,
                                          init_checkpoint))
    if not args.verbose:
        quiet_console(runner)
    hook = next((h for h in runner.hooks if type(h).__name__ == 'FAMTWeightHook'), None)
    refresh_seconds = []
    if hook is not None:  # time the refresh passes (they run inside the budget)
        refresh = hook.refresh

        def timed_refresh(r):
            t0 = time.perf_counter()
            refresh(r)
            refresh_seconds.append(time.perf_counter() - t0)
        hook.refresh = timed_refresh
    runner.train()
    stats = dict(runner.train_loop.stats)
    stats['checkpoint_epoch'] = runner.train_loop.epoch  # epoch_N.pth, the partial one counted
    stats['refresh_seconds'] = float(sum(refresh_seconds))
    stats['refreshes'] = len(refresh_seconds)
    ckpt = osp.join(work_dir, f'epoch_{runner.train_loop.epoch}.pth')
    if not osp.isfile(ckpt):
        raise RuntimeError(f'the budgeted run did not write {ckpt}')
    return stats, ckpt


# ---------------------------------------------------------------------------
# Linear probe on frozen features
# ---------------------------------------------------------------------------
class ProbeData:
    """The probe's images (rendered once) and labels, normalised as in training."""

    def __init__(self, cfg, num_test):
        from famt_mm.datasets import SyntheticObjects
        ds_cfg = cfg.train_dataloader.dataset
        num_train = ds_cfg.num_samples  # the pre-training images
        kw = dict(img_size=ds_cfg.get('img_size', 64), seed=ds_cfg.get('seed', 0),
                  num_classes=ds_cfg.get('num_classes', 8))
        pre = cfg.model.get('data_preprocessor') or cfg.data_preprocessor
        self.mean = torch.tensor(pre['mean']).view(1, 3, 1, 1)
        self.std = torch.tensor(pre['std']).view(1, 3, 1, 1)
        self.to_rgb = pre.get('to_rgb', True)
        self.train_set = SyntheticObjects(num_samples=num_train, split='train', **kw)
        self.test_set = SyntheticObjects(num_samples=num_test, split='test', **kw)
        self.x_train, self.y_train = self._render(self.train_set)
        self.x_test, self.y_test = self._render(self.test_set)

    def _render(self, ds):
        imgs = np.stack([ds.get_image(i) for i in range(len(ds))])  # N x H x W x 3, BGR
        if self.to_rgb:
            imgs = imgs[..., ::-1]
        x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float()
        return (x - self.mean) / self.std, torch.from_numpy(ds.get_gt_labels())


def build_probe_encoder(cfg, checkpoint):
    """Frozen mmpretrain VisionTransformer with the pre-training arch, strictly loaded."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    bb = cfg.model.backbone
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        encoder = MODELS.build(dict(
            type='VisionTransformer', arch=bb.arch, img_size=bb.img_size,
            patch_size=bb.patch_size, out_type='raw', final_norm=True,
            init_cfg=dict(type='StrictPretrained', checkpoint=checkpoint, prefix='backbone.')))
    encoder.init_weights()
    encoder.eval()
    return encoder.requires_grad_(False)


@torch.no_grad()
def extract_features(encoder, x, batch_size=250):
    """CLS token (after the final norm) and mean patch token, each N x C."""
    cls, avg = [], []
    for i in range(0, len(x), batch_size):
        tokens = encoder(x[i:i + batch_size])[-1]  # B x (1 + L) x C
        cls.append(tokens[:, 0])
        avg.append(tokens[:, 1:].mean(1))
    return {'cls': torch.cat(cls), 'avg': torch.cat(avg)}


def fit_logistic(x, y, num_classes, l2, max_iter=300):
    """Multinomial logistic regression (weights W, bias b) by full-batch L-BFGS."""
    x = x.double()
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return w.detach(), b.detach()


def accuracy(x, y, w, b):
    return float(((x.double() @ w + b).argmax(1) == y).double().mean() * 100)


def linear_probe(f_train, y_train, f_test, y_test, num_classes, l2_grid):
    """Test top-1 (%) with the L2 penalty picked on the last 20% of the training set."""
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    n_fit = int(round(0.8 * len(f_train)))
    scores = []
    for l2 in l2_grid:
        w, b = fit_logistic(f_train[:n_fit], y_train[:n_fit], num_classes, l2)
        scores.append(accuracy(f_train[n_fit:], y_train[n_fit:], w, b))
    l2 = l2_grid[int(np.argmax(scores))]  # first best: the smallest penalty on ties
    w, b = fit_logistic(f_train, y_train, num_classes, l2)
    return dict(top1=accuracy(f_test, y_test, w, b), train_top1=accuracy(f_train, y_train, w, b),
                l2=l2)


def probe_checkpoint(cfg, checkpoint, data, l2_grid):
    t0 = time.perf_counter()
    encoder = build_probe_encoder(cfg, checkpoint)
    f_train = extract_features(encoder, data.x_train)
    f_test = extract_features(encoder, data.x_test)
    num_classes = data.train_set.num_classes
    out = {k: linear_probe(f_train[k], data.y_train, f_test[k], data.y_test, num_classes,
                           l2_grid) for k in FEATURES}
    out['seconds'] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------------------
# Object focus of the FAMT weight bank
# ---------------------------------------------------------------------------
def object_focus(checkpoint, train_set):
    """Share of the bank's weight on object pixels vs the objects' share of the area."""
    from famt_mm.models.famt_weights import dequantize_weights
    info = load_local_checkpoint(checkpoint, map_location='cpu').get('famt') or {}
    if info.get('bank') is None:
        return None
    bank = dequantize_weights(info['bank']).double()  # N x h x w
    if bank.shape[0] != len(train_set):
        raise ValueError(f'{checkpoint}: bank of {bank.shape[0]} images, dataset of '
                         f'{len(train_set)}')
    grid = tuple(bank.shape[1:])
    weight_share, area_share = [], []
    for i in range(len(train_set)):
        cover = torch.from_numpy(train_set.patch_object_fraction(i, grid))
        w = bank[i]
        weight_share.append(float((w * cover).sum() / w.sum()))
        area_share.append(float(cover.mean()))
    ws, area = float(np.mean(weight_share)), float(np.mean(area_share))
    return dict(weight_on_object=ws, object_area=area, lift=ws / area,
                bank_epoch=info.get('bank_epoch'), images=len(train_set), grid_hw=list(grid))


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(statistics.stdev(values)) if len(values) > 1 else 0.0


def fmt(m, s, digits=1):
    return '-' if m is None else f'{m:.{digits}f} +- {s:.{digits}f}'


def summarise(runs):
    summary = {}
    for method in METHODS:
        rows = [r[method] for r in runs]
        summary[method] = {
            **{f'{k}_top1': mean_std([r['probe'][k]['top1'] for r in rows]) for k in FEATURES},
            'epochs': mean_std([r.get('train', {}).get('epochs') for r in rows]),
            'images': mean_std([r.get('train', {}).get('images') for r in rows]),
            'train_seconds': mean_std([r.get('train', {}).get('train_seconds') for r in rows]),
            'refresh_seconds': mean_std([r.get('train', {}).get('refresh_seconds')
                                         for r in rows] if method == 'FAMT' else []),
        }
    focus = [r['FAMT'].get('object_focus') for r in runs]
    focus = [f for f in focus if f]
    if focus:
        summary['object_focus'] = {k: mean_std([f[k] for f in focus])
                                   for k in ('weight_on_object', 'object_area', 'lift')}
    return summary


def table(summary, runs, args):
    head = (f'MAE vs FAMT on SyntheticObjects ({args.num_train} train / {args.num_test} test '
            f'images), {args.budget_s:g} s of training per run, seeds {args.seeds}; linear '
            'probe top-1 (%) on frozen features, mean +- std over seeds')
    lines = [head, '',
             '| method | epochs in budget | images seen | FAMT refresh s | probe top-1 CLS | '
             'probe top-1 avg-pool |',
             '| --- | --- | --- | --- | --- | --- |']
    for method in METHODS:
        s = summary[method]
        lines.append(f"| {method} | {fmt(*s['epochs'], 2)} | {fmt(*s['images'], 0)} | "
                     f"{fmt(*s['refresh_seconds'], 1)} | {fmt(*s['cls_top1'])} | "
                     f"{fmt(*s['avg_top1'])} |")
    sched = ', '.join(f"seed {r['seed']}: start {r['FAMT']['schedule'][0]}, every "
                      f"{r['FAMT']['schedule'][1]}" for r in runs)
    lines += ['', f'FAMT schedule (epochs; scaled to the MAE run of the seed): {sched}']
    focus = summary.get('object_focus')
    if focus:
        lines.append(
            f"FAMT object focus (final bank): {fmt(*[100 * v for v in focus['weight_on_object']])}"
            f"% of the weight on object patches, which cover "
            f"{fmt(*[100 * v for v in focus['object_area']])}% of the area "
            f"(lift {fmt(*focus['lift'], 2)}; 1.00 = no focus)")
    else:
        lines.append('FAMT object focus: no bank (FAMT never started within the budget)')
    return '\n'.join(lines)


def plot(runs, summary, path, chance=None):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.38
    colours = {'cls': '#4c72b0', 'avg': '#dd8452'}
    for j, feat in enumerate(FEATURES):
        xs = np.arange(len(METHODS)) + (j - 0.5) * width
        means = [summary[m][f'{feat}_top1'][0] for m in METHODS]
        stds = [summary[m][f'{feat}_top1'][1] for m in METHODS]
        ax.bar(xs, means, width, yerr=stds, capsize=3, color=colours[feat], alpha=0.8,
               label='CLS token' if feat == 'cls' else 'mean patch token')
        for x, m in zip(xs, METHODS):
            ax.scatter([x] * len(runs), [r[m]['probe'][feat]['top1'] for r in runs],
                       color='k', s=8, zorder=3)
    if chance is not None:
        ax.axhline(chance, color='grey', linestyle='--', linewidth=1, label='chance')
    ax.set_xticks(np.arange(len(METHODS)))
    ax.set_xticklabels(METHODS)
    ax.set_ylabel('linear probe top-1 (%)')
    ax.set_title('same wall-clock pre-training budget per run (dots: seeds)')
    ax.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--budget-s', type=float, default=90,
                   help='training wall-clock seconds per pre-training run')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--out-dir', default='work_dirs/mae_vs_famt')
    p.add_argument('--num-train', type=int, default=1000,
                   help="pre-training and probe-training images (split 'train')")
    p.add_argument('--num-test', type=int, default=1000, help="probe test images (split 'test')")
    p.add_argument('--famt-start-frac', type=float, default=0.25,
                   help='FAMT starts after this share of the epochs MAE reached')
    p.add_argument('--famt-interval-frac', type=float, default=0.5,
                   help='FAMT refreshes its weights every this share of the MAE epochs')
    p.add_argument('--warmup-frac', type=float, default=0.1, help='lr warm-up share of the budget')
    p.add_argument('--l2-grid', type=float, nargs='+', default=[1e-4, 1e-3, 1e-2])
    p.add_argument('--num-workers', type=int, default=0, help='training data loader workers')
    p.add_argument('--threads', type=int, default=1,
                   help='torch CPU threads (1 is fastest on a busy 2-core machine)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides applied to both pre-training configs (e.g. a smaller model)')
    p.add_argument('--verbose', action='store_true', help='show the runners\' INFO logs')
    args = p.parse_args(argv)
    if args.budget_s <= 0:
        p.error('--budget-s must be > 0')
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.perf_counter()
    probe_cfg = pretrain_cfg(MAE_CONFIG, out_dir, 0, args)
    data = ProbeData(probe_cfg, args.num_test)
    args.num_train = len(data.train_set)  # after --cfg-options
    runs = []
    for seed in args.seeds:
        run = dict(seed=seed)
        mae_dir = osp.join(out_dir, f'mae_seed{seed}')
        init_ckpt = osp.join(mae_dir, 'init.pth')
        stats, ckpt = pretrain(MAE_CONFIG, mae_dir, seed, args, init_checkpoint=init_ckpt)
        run['random init'] = dict(checkpoint=init_ckpt,
                                  probe=probe_checkpoint(probe_cfg, init_ckpt, data, args.l2_grid))
        run['MAE'] = dict(train=stats, checkpoint=ckpt,
                          probe=probe_checkpoint(probe_cfg, ckpt, data, args.l2_grid))

        start = max(1, int(round(args.famt_start_frac * stats['epochs'])))
        interval = max(1, int(round(args.famt_interval_frac * stats['epochs'])))
        f_stats, f_ckpt = pretrain(FAMT_CONFIG, osp.join(out_dir, f'famt_seed{seed}'), seed,
                                   args, famt_schedule=(start, interval))
        run['FAMT'] = dict(train=f_stats, checkpoint=f_ckpt, schedule=[start, interval],
                           probe=probe_checkpoint(probe_cfg, f_ckpt, data, args.l2_grid),
                           object_focus=object_focus(f_ckpt, data.train_set))
        for method in METHODS:  # the loss curves stay in the json, summarised
            losses = run[method].get('train', {}).pop('losses', None)
            if losses:
                run[method]['train']['final_loss'] = float(np.mean(losses[-10:]))
        runs.append(run)
        top1 = {m: run[m]['probe']['cls']['top1'] for m in METHODS}
        print(f"seed {seed}: probe top-1 CLS random init {top1['random init']:.1f}, "
              f"MAE {top1['MAE']:.1f} ({stats['epochs']:.2f} ep), "
              f"FAMT {top1['FAMT']:.1f} ({f_stats['epochs']:.2f} ep)", flush=True)

    summary = summarise(runs)
    text = table(summary, runs, args)
    result = dict(settings={k: v for k, v in vars(args).items()},
                  machine=dict(cpus=os.cpu_count(), threads=args.threads,
                               load_avg=os.getloadavg(), torch=torch.__version__),
                  runs=runs, summary=summary, table=text,
                  total_seconds=time.perf_counter() - t_start)
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(result, f, indent=1)
    plot(runs, summary, osp.join(out_dir, 'results.png'),
         chance=100.0 / data.train_set.num_classes)
    print()
    print(text)
    print(f"\nresults: {osp.join(out_dir, 'results.json')}, {osp.join(out_dir, 'results.png')} "
          f'({result["total_seconds"]:.0f} s in all)')
    return result


if __name__ == '__main__':
    main()
