"""The CPU probe experiment: MAE, FAMT and its ablations at equal time and at equal epochs.

What it runs, how budgets and probes work and how to read the result: docs/evaluation.md
("The CPU probe experiment"). Every pre-training goes through mmengine's ``Runner`` with the
project's configs, ``FAMTWeightHook`` and ``FAMTMaskGenerator``; this module only sets the
budget, the method's mask-generator settings and the bookkeeping. Each run's result is written
to ``<out_dir>/seed<s>/<run>.json`` as soon as it finishes; a rerun skips runs that have one
(so an interrupted experiment resumes), and :func:`report` summarises whatever exists.
"""
import copy
import json
import logging
import os
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .budget_loop import BudgetedEpochBasedTrainLoop  # noqa: F401  (registers the loop)
from .hooks import FAMTFocusHook  # noqa: F401  (registers the hooks)
from .oracle import object_coverage  # noqa: F401  (registers the oracle term)
from .probe import FEATURES, ProbeData, probe_checkpoint
from .stats import paired_interval

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAE_CONFIG = osp.join(REPO, 'configs', 'mae_vit-micro-p4_probe.py')
FAMT_CONFIG = osp.join(REPO, 'configs', 'famt_mae_vit-micro-p4_probe.py')

#: method -> (pre-training config, FAMTMaskGenerator overrides, weight hook)
METHODS: Dict[str, dict] = {
    'MAE': dict(config='mae'),
    'FAMT (A x F)': dict(config='famt', generator=dict(
        terms=('attention', 'frequency'), combine='product')),
    'attention only': dict(config='famt', generator=dict(terms=('attention',))),
    'frequency only': dict(config='famt', generator=dict(terms=('frequency',))),
    'A x F, no throw (mask .75)': dict(config='famt', generator=dict(
        terms=('attention', 'frequency'), combine='product', mask_ratio=0.75,
        throw_ratio=0.0)),
    'uniform, FAMT budget (.45/.40)': dict(config='famt', uniform=True),
    # the oracle arms: weights from the dataset's own object masks (analysis/oracle.py)
    'oracle (objects masked)': dict(config='famt', oracle=True, generator=dict(
        terms=('object_coverage', ), combine='product')),
    'inverted oracle (objects visible)': dict(config='famt', oracle=True, generator=dict(
        terms=('object_coverage', ), combine='product',
        term_args=dict(object_coverage=dict(invert=True)))),
    # FAMT whose random phase before start_epoch throws at FAMT's budget too
    'FAMT + warm-up throw (.45/.40)': dict(config='famt', generator=dict(
        terms=('attention', 'frequency'), combine='product', random_mask_ratio=0.45,
        random_throw_ratio=0.40)),
}
#: the methods of each table (MAE always runs first and is in both)
TABLES: Dict[str, tuple] = {
    'main': ('MAE', 'FAMT (A x F)', 'uniform, FAMT budget (.45/.40)', 'oracle (objects masked)',
             'inverted oracle (objects visible)', 'FAMT + warm-up throw (.45/.40)'),
    'ablations': ('MAE', 'FAMT (A x F)', 'attention only', 'frequency only',
                  'A x F, no throw (mask .75)', 'uniform, FAMT budget (.45/.40)'),
}
CURVE_METHODS = ('MAE', 'FAMT (A x F)')
MODES = ('epochs', 'time')


def run_name(method: str, mode: str) -> str:
    slug = ''.join(c if c.isalnum() else '_' for c in method.lower()).strip('_')
    while '__' in slug:
        slug = slug.replace('__', '_')
    return f'{slug}.{mode}'


def _quiet_console(runner) -> None:
    """Training log (INFO) in the run's work dir, only warnings on the console."""
    for handler in runner.logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.INFO)
        elif isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.WARNING)


def build_cfg(method: str, work_dir: str, seed: int, settings: dict,
              budget_s: Optional[float] = None, snapshot_fracs: Sequence[float] = (),
              init_checkpoint: Optional[str] = None):
    """The mmengine config of one pre-training run."""
    from mmengine.config import Config
    from famt_mm.compat import adapt_cfg_to_device
    spec = METHODS[method]
    cfg = Config.fromfile(MAE_CONFIG if spec['config'] == 'mae' else FAMT_CONFIG)
    if settings.get('cfg_options'):
        cfg.merge_from_dict(copy.deepcopy(settings['cfg_options']))
    epochs = int(settings['epochs'])
    cfg.train_cfg = dict(type='BudgetedEpochBasedTrainLoop', budget_s=budget_s,
                         max_epochs=epochs if budget_s is None else 100000,
                         clock=settings['clock'], warmup_frac=settings['warmup_frac'],
                         snapshot_fracs=list(snapshot_fracs), init_checkpoint=init_checkpoint)
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 6, save_last=True,
                                        max_keep_ckpts=1, save_param_scheduler=False,
                                        save_optimizer=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    start, interval = famt_schedule(epochs, settings)
    if spec['config'] == 'famt':
        cfg.model.mask_generator.update(copy.deepcopy(spec.get('generator', {})))
        if spec.get('oracle'):  # the oracle term reads the training set's object masks
            term_args = dict(cfg.model.mask_generator.get('term_args') or {})
            term_args['object_coverage'] = dict(term_args.get('object_coverage') or {},
                                                dataset=cfg.train_dataloader.dataset.to_dict())
            cfg.model.mask_generator.term_args = term_args
        if spec.get('uniform'):
            cfg.custom_hooks = [dict(type='UniformFAMTBankHook', start_epoch=start)]
        else:
            cfg.custom_hooks = [dict(type='FAMTWeightHook', start_epoch=start, interval=interval),
                                dict(type='FAMTFocusHook')]
    else:
        cfg.custom_hooks = []
    cfg.custom_imports = dict(imports=['famt_mm', 'famt_mm.analysis'],
                              allow_failed_imports=False)
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.log_level = 'WARNING'  # quiet set-up; the run's log file gets INFO (_quiet_console)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.experiment_name = f'{osp.basename(work_dir)}_{int(time.time() * 1000)}'
    adapt_cfg_to_device(cfg)
    return cfg


def famt_schedule(epochs: int, settings: dict):
    """FAMT's (start_epoch, interval) for an ``epochs``-epoch run (at least 1 each)."""
    return (max(1, int(round(settings['famt_start_frac'] * epochs))),
            max(1, int(round(settings['famt_interval_frac'] * epochs))))


def pretrain(cfg) -> dict:
    """One budgeted pre-training; the loop's stats, the final checkpoint and FAMT's records."""
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    _quiet_console(runner)
    runner.train()
    loop = runner.train_loop
    stats = dict(loop.stats)
    losses = stats.pop('losses')
    stats['final_loss'] = float(np.mean(losses[-10:])) if losses else None
    stats['checkpoint'] = osp.join(cfg.work_dir, f'epoch_{loop.epoch}.pth')
    if not osp.isfile(stats['checkpoint']):
        raise RuntimeError(f'the budgeted run did not write {stats["checkpoint"]}')
    focus = next((h for h in runner.hooks if isinstance(h, FAMTFocusHook)), None)
    stats['refreshes'] = focus.records if focus is not None else []
    stats['refresh_seconds'] = float(sum(r['refresh_seconds'] or 0 for r in stats['refreshes']))
    return stats


def _save(path: str, obj) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)  # a run's json is complete or absent


def _load(path: str):
    with open(path) as f:
        return json.load(f)


def probe_data(settings: dict) -> ProbeData:
    from mmengine.config import Config
    cfg = Config.fromfile(MAE_CONFIG)
    if settings.get('cfg_options'):
        cfg.merge_from_dict(copy.deepcopy(settings['cfg_options']))
    return ProbeData(cfg.train_dataloader.dataset.to_dict(), cfg.data_preprocessor,
                     settings['num_test']), cfg.model.backbone.to_dict()


def run_seed(seed: int, out_dir: str, settings: dict, log=print,
             methods: Optional[Sequence[str]] = None) -> List[dict]:
    """Every run of one seed (or of ``methods``; MAE always runs first: it sets the time
    budget), interleaved time / epochs; skips runs that already have a json."""
    seed_dir = osp.join(out_dir, f'seed{seed}')
    os.makedirs(seed_dir, exist_ok=True)
    data, backbone = probe_data(settings)
    results = []

    def probe(ckpt):
        return probe_checkpoint(backbone, ckpt, data, settings['l2_grid'], settings['knn_k'])

    def one(method, mode, budget_s=None):
        name = run_name(method, mode)
        path = osp.join(seed_dir, name + '.json')
        if osp.isfile(path):
            results.append(_load(path))
            return results[-1]
        work_dir = osp.join(seed_dir, name)
        snaps = settings['curve_fracs'] if (method in CURVE_METHODS and
                                            mode == ('epochs' if method == 'MAE' else 'time')) \
            else ()
        init = osp.join(work_dir, 'init.pth') if method == 'MAE' else None
        t0 = time.perf_counter()
        stats = pretrain(build_cfg(method, work_dir, seed, settings, budget_s, snaps, init))
        res = dict(seed=seed, method=method, mode=mode, budget_s=budget_s,
                   schedule=list(famt_schedule(settings['epochs'], settings))
                   if METHODS[method]['config'] == 'famt' else None,
                   train=stats, probe=probe(stats['checkpoint']))
        for snap in stats['snapshots']:
            snap['probe'] = probe(snap['path'])
        if init:
            res['random_init'] = probe(init)
        res['run_wall_seconds'] = time.perf_counter() - t0
        _save(path, res)
        results.append(res)
        p = res['probe']
        log(f"seed {seed} {method} [{mode}]: {stats['epochs']:.2f} ep, {stats['seconds']:.0f} s "
            f"{settings['clock']} ({stats['wall_seconds']:.0f} s wall), linear CLS "
            f"{p['cls']['top1']:.1f} / avg {p['avg']['top1']:.1f}, k-NN CLS "
            f"{p['cls_knn']['top1']:.1f} / avg {p['avg_knn']['top1']:.1f}"
            + (f", random init linear CLS {res['random_init']['cls']['top1']:.1f} / avg "
               f"{res['random_init']['avg']['top1']:.1f}" if init else ''))
        return res

    # MAE at E epochs is both MAE's equal-epoch run and the time budget of this seed.
    mae = one('MAE', 'epochs')
    budget = mae['train']['seconds']
    for method in METHODS if methods is None else methods:
        if method == 'MAE':
            continue
        if method not in METHODS:
            raise KeyError(f'unknown method {method!r}; choose from {tuple(METHODS)}')
        one(method, 'time', budget)
        one(method, 'epochs')
    return results


# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None, 0
    return (float(np.mean(values)), float(statistics.stdev(values)) if len(values) > 1 else 0.0,
            len(values))


def load_results(out_dir: str) -> List[dict]:
    found = []
    for d in sorted(os.listdir(out_dir)) if osp.isdir(out_dir) else []:
        if d.startswith('seed') and osp.isdir(osp.join(out_dir, d)):
            found += [_load(osp.join(out_dir, d, f)) for f in sorted(os.listdir(
                osp.join(out_dir, d))) if f.endswith('.json')]
    return found


def _probe_cells(rows, key='probe'):
    cells = {}
    for feat in FEATURES:
        cells[f'linear_{feat}'] = mean_std([r[key][feat]['top1'] for r in rows])
        cells[f'knn_{feat}'] = mean_std([r[key][f'{feat}_knn']['top1'] for r in rows])
    return cells


def summarise(results: List[dict]) -> dict:
    """Mean, std and count over seeds of every method x mode, plus random init and focus."""
    summary = {}
    mae = [r for r in results if r['method'] == 'MAE']
    if mae:
        summary['random init'] = _probe_cells(mae, 'random_init')
    for mode in MODES:
        for method in METHODS:
            rows = [r for r in results if r['method'] == method and
                    (r['mode'] == mode or (method == 'MAE'))]
            if not rows:
                continue
            t = [r['train'] for r in rows]
            cell = _probe_cells(rows)
            cell.update(
                seeds=sorted(r['seed'] for r in rows),
                epochs=mean_std([x['epochs'] for x in t]),
                seconds=mean_std([x['seconds'] for x in t]),
                wall_seconds=mean_std([x['wall_seconds'] for x in t]),
                refresh_seconds=mean_std([x['refresh_seconds'] for x in t]
                                         if METHODS[method]['config'] == 'famt' and
                                         not METHODS[method].get('uniform') else []),
                final_loss=mean_std([x['final_loss'] for x in t]))
            refreshes = [x['refreshes'] for x in t if x['refreshes']]
            if refreshes:  # focus per refresh, by refresh number
                cell['focus'] = [
                    dict(epoch=mean_std([rs[k]['epoch'] for rs in refreshes if len(rs) > k])[0],
                         lift=mean_std([rs[k]['lift'] for rs in refreshes if len(rs) > k]),
                         weight_on_object=mean_std([rs[k]['weight_on_object']
                                                    for rs in refreshes if len(rs) > k]),
                         object_area=mean_std([rs[k]['object_area']
                                               for rs in refreshes if len(rs) > k]))
                    for k in range(max(len(rs) for rs in refreshes))]
            summary[f'{method} [{mode}]'] = cell
    return summary


def _fmt(ms, digits=1, scale=1.0):
    m, s, _ = ms
    return '-' if m is None else f'{scale * m:.{digits}f} +- {scale * s:.{digits}f}'


def table(summary: dict, settings: dict) -> str:
    """The markdown tables of the summary (numbers as mean +- std over the seeds)."""
    lines = []
    head = ('| method | seeds | epochs | CPU s | wall s | refresh wall s | linear CLS | '
            'linear avg | k-NN CLS | k-NN avg |')
    sep = '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
    for mode, title in (('time', 'Equal time (each seed: the CPU seconds MAE took)'),
                        ('epochs', f'Equal epochs ({settings["epochs"]} each)')):
        lines += [f'**{title}**', '', head, sep]
        ri = summary.get('random init')
        if ri:
            lines.append(f"| random init | {ri['linear_cls'][2]} | - | - | - | - | "
                         f"{_fmt(ri['linear_cls'])} | {_fmt(ri['linear_avg'])} | "
                         f"{_fmt(ri['knn_cls'])} | {_fmt(ri['knn_avg'])} |")
        for method in METHODS:
            c = summary.get(f'{method} [{mode}]')
            if c is None:
                continue
            lines.append(
                f"| {method} | {len(c['seeds'])} | {_fmt(c['epochs'], 2)} | "
                f"{_fmt(c['seconds'], 0)} | {_fmt(c['wall_seconds'], 0)} | "
                f"{_fmt(c['refresh_seconds'], 1)} | {_fmt(c['linear_cls'])} | "
                f"{_fmt(c['linear_avg'])} | {_fmt(c['knn_cls'])} | {_fmt(c['knn_avg'])} |")
        lines.append('')
    lines += ['**Object focus of the weights at each refresh** (lift = weight share on object '
              'patches / their area share; 1.00 = no focus; epoch of the refresh):', '',
              '| method | budget | refresh 1 | refresh 2 | refresh 3 | refresh 4 | refresh 5 |',
              '| --- | --- | --- | --- | --- | --- | --- |']
    for method in METHODS:
        for mode in MODES:
            c = summary.get(f'{method} [{mode}]')
            if not c or not c.get('focus'):
                continue
            cells = [f"ep {f['epoch']:.0f}: {_fmt(f['lift'], 2)}" for f in c['focus'][:5]]
            lines.append(f'| {method} | {mode} | ' + ' | '.join(cells + ['-'] * (5 - len(cells)))
                         + ' |')
    area = [f['object_area'] for c in summary.values() if isinstance(c, dict)
            for f in c.get('focus', [])]
    if area:
        lines.append('')
        lines.append(f'Objects cover {_fmt(area[0], 1, 100)}% of the area.')
    return '\n'.join(lines)


#: the metrics of the paired comparisons: (probe key, column title)
PAIRED_METRICS = (('avg', 'linear (mean token)'), ('cls', 'linear (CLS)'),
                  ('avg_knn', 'k-NN (mean token)'))
#: the baselines every method is compared with: MAE and random masking at FAMT's budget
BASELINES = ('MAE', 'uniform, FAMT budget (.45/.40)')


def paired_differences(results: List[dict]) -> List[dict]:
    """Each method against each baseline at each budget: the mean paired difference of every
    metric over the seeds both have (top-1 points) with its 95% t interval. MAE's runs are
    its equal-epoch runs (they set the time budget too)."""
    def runs(method, mode):
        return {r['seed']: r for r in results
                if r['method'] == method and (method == 'MAE' or r['mode'] == mode)}
    rows = []
    for mode in ('time', 'epochs'):
        for method in METHODS:
            for baseline in BASELINES:
                if method in ('MAE', baseline):
                    continue
                own, base = runs(method, mode), runs(baseline, mode)
                seeds = sorted(set(own) & set(base))
                if not seeds:
                    continue
                rows.append(dict(method=method, mode=mode, baseline=baseline, seeds=seeds, **{
                    key: paired_interval([own[s]['probe'][key]['top1'] for s in seeds],
                                         [base[s]['probe'][key]['top1'] for s in seeds])
                    for key, _ in PAIRED_METRICS}))
    return rows


def _fmt_interval(iv) -> str:
    if iv['low'] is None:
        return f"{iv['mean']:+.1f} (1 seed)"
    mark = ' *' if iv['low'] > 0 or iv['high'] < 0 else ''
    return f"{iv['mean']:+.1f} [{iv['low']:+.1f}, {iv['high']:+.1f}]{mark}"


def paired_table(rows: List[dict]) -> str:
    """The markdown table of :func:`paired_differences`."""
    if not rows:
        return ''
    lines = ['**Paired differences** (method - baseline, top-1 points, mean over the seeds with '
             '95% t interval, df = seeds - 1, paired by seed; * = the interval excludes 0):', '',
             '| method | budget | against | seeds | '
             + ' | '.join(title for _, title in PAIRED_METRICS) + ' |',
             '| --- | --- | --- | --- | ' + ' | '.join('---' for _ in PAIRED_METRICS) + ' |']
    for r in rows:
        lines.append(f"| {r['method']} | {r['mode']} | {r['baseline']} | {len(r['seeds'])} | "
                     + ' | '.join(_fmt_interval(r[key]) for key, _ in PAIRED_METRICS) + ' |')
    return '\n'.join(lines)


def plot_curves(results: List[dict], path: str, feature: str = 'avg') -> None:
    """Linear-probe top-1 against CPU seconds of training, MAE and FAMT, one line per seed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = {'MAE': '#4c72b0', 'FAMT (A x F)': '#dd8452'}
    for ax, feat in zip(axes, ('cls', feature if feature != 'cls' else 'avg')):
        for r in results:
            if r['method'] not in CURVE_METHODS or not r['train']['snapshots']:
                continue
            pts = [(0.0, r['random_init'][feat]['top1'])] if 'random_init' in r else []
            pts += [(s['seconds'], s['probe'][feat]['top1']) for s in r['train']['snapshots']]
            pts.append((r['train']['seconds'], r['probe'][feat]['top1']))
            xs, ys = zip(*sorted(pts))
            ax.plot(xs, ys, '-o', color=colours[r['method']], ms=3, alpha=0.8,
                    label=f"{r['method']}")
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), loc='lower right')
        ax.set_xlabel('pre-training CPU seconds')
        ax.set_title(f'linear probe, {"CLS token" if feat == "cls" else "mean patch token"}')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('top-1 (%)')
    fig.suptitle('probe accuracy during pre-training (lines: seeds; first point: random init)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(out_dir: str, settings: dict, log=print) -> dict:
    """Summarise every run json under ``out_dir``: results.json, results.md, curves.png."""
    results = load_results(out_dir)
    summary = summarise(results)
    paired = paired_differences(results)
    text = table(summary, settings)
    if paired:
        text += '\n\n' + paired_table(paired)
    result = dict(settings=settings, runs=results, summary=summary, paired=paired, table=text,
                  machine=dict(cpus=os.cpu_count(), load_avg=os.getloadavg(),
                               torch=torch.__version__, threads=torch.get_num_threads()))
    _save(osp.join(out_dir, 'results.json'), result)
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(text + '\n')
    if any(r['train']['snapshots'] for r in results):
        plot_curves(results, osp.join(out_dir, 'curves.png'))
    log(text)
    return result
