"""famt_mm.analysis (the CPU probe experiment) and its command, tools/analysis/mae_vs_famt_probe.py:
the budgeted loop, the probes, the focus measure, the uniform control, and the quick variant end
to end."""
import json
import os.path as osp

import pytest
import torch

from tests.conftest import FAMT_DEMO, MAE_DEMO, REPO, run_tool, tiny_cfg

TOOL = osp.join(REPO, 'tools', 'analysis', 'mae_vs_famt_probe.py')


def _budgeted(cfg, **loop):
    import famt_mm.analysis  # noqa: F401  (registers the loop and hooks)
    cfg.train_cfg = dict(type='BudgetedEpochBasedTrainLoop', **loop)
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 6,
                                        save_last=True, max_keep_ckpts=1)
    return cfg


def test_time_budget_stops_at_the_budget_snapshots_and_saves_the_last_epoch(tmp_path):
    from mmengine.runner import Runner
    from famt_mm.compat import load_local_checkpoint
    budget = 1.5
    cfg = _budgeted(tiny_cfg(tmp_path / 'work', config=MAE_DEMO), budget_s=budget, clock='cpu',
                    snapshot_fracs=[0.3, 0.6])
    cfg.experiment_name = 'time_budget'
    runner = Runner.from_cfg(cfg)
    runner.train()
    loop = runner.train_loop
    stats = loop.stats
    assert budget <= stats['seconds'] < budget + 10
    assert stats['seconds'] == pytest.approx(stats['cpu_seconds'], abs=1e-3)  # the cpu clock
    assert stats['images'] == len(stats['losses']) * 8 and stats['iters'] == loop.iter
    assert loop.epoch - 1 < stats['epochs'] <= loop.epoch
    assert [s['frac'] for s in stats['snapshots']] == [0.3, 0.6]
    for snap in stats['snapshots']:  # taken once the share was spent, encoder keys only
        assert snap['seconds'] >= snap['frac'] * budget
        sd = torch.load(snap['path'], map_location='cpu')['state_dict']
        assert sd and all(k.startswith('backbone.') for k in sd)
    ckpt = load_local_checkpoint(osp.join(str(tmp_path / 'work'), f'epoch_{loop.epoch}.pth'))
    assert ckpt['meta']['iter'] == loop.iter
    # the budget-driven schedule: warm-up from ~0, peak at 10%, ~0 at the end
    assert loop.lr_factor(0.0) == pytest.approx(1e-3)
    assert loop.lr_factor(0.1) == pytest.approx(1.0)
    assert loop.lr_factor(1.0) == pytest.approx(0.0, abs=1e-12)
    assert runner.optim_wrapper.get_lr()['lr'][0] < 0.5 * 1.5e-4


def test_epoch_budget_runs_whole_epochs_and_pausing_stops_the_clock(tmp_path):
    import time
    from mmengine.runner import Runner
    cfg = _budgeted(tiny_cfg(tmp_path / 'work', config=MAE_DEMO), budget_s=None,
                    max_epochs=2, clock='wall')
    cfg.experiment_name = 'epoch_budget'
    runner = Runner.from_cfg(cfg)
    runner.train()
    loop = runner.train_loop
    assert loop.stats['epochs'] == 2.0 and loop.iter == 2 * len(loop.dataloader)
    assert loop.progress() == 1.0
    # the clock may only count what lies outside the sleep, however slow a loaded machine is
    start, before = time.perf_counter(), loop.elapsed('wall')
    with loop.paused():
        slept = time.perf_counter()
        time.sleep(0.3)
        slept = time.perf_counter() - slept
    counted, total = loop.elapsed('wall') - before, time.perf_counter() - start
    assert counted <= total - slept + 0.01


def test_linear_and_knn_probes_read_separable_features_and_not_noise():
    from famt_mm.analysis import knn_probe, linear_probe
    g = torch.Generator().manual_seed(0)
    centres = 4 * torch.randn(4, 16, generator=g)
    y = torch.arange(400) % 4
    f = centres[y] + torch.randn(400, 16, generator=g)
    tr, te = slice(0, 300), slice(300, 400)
    assert linear_probe(f[tr], y[tr], f[te], y[te], 4)['top1'] > 95
    assert knn_probe(f[tr], y[tr], f[te], y[te], 4)['top1'] > 95
    noise = torch.randn(400, 16, generator=g)
    assert linear_probe(noise[tr], y[tr], noise[te], y[te], 4)['top1'] < 45
    assert knn_probe(noise[tr], y[tr], noise[te], y[te], 4)['top1'] < 45


def test_object_focus_is_one_for_uniform_weights_and_higher_on_the_object():
    from famt_mm.analysis import bank_object_focus, object_covers
    from famt_mm.datasets import SyntheticObjects
    from famt_mm.models.famt_weights import quantize_weights
    ds = SyntheticObjects(num_samples=6, img_size=32, num_classes=4, object_scale=(0.5, 0.9),
                          texture=False)
    covers = object_covers(ds, (8, 8))
    assert covers.shape == (6, 8, 8) and 0 < float(covers.mean()) < 1
    uniform = bank_object_focus(quantize_weights(torch.ones(6, 8, 8), 'float16'), covers)
    assert uniform['lift'] == pytest.approx(1.0, abs=1e-6)
    assert uniform['object_area'] == pytest.approx(float(covers.mean()))
    on_object = bank_object_focus(quantize_weights(0.01 + covers.float(), 'uint8'), covers)
    off_object = bank_object_focus(quantize_weights(1.01 - covers.float(), 'uint8'), covers)
    assert on_object['lift'] > 1.5 and off_object['lift'] < 0.7


def test_uniform_control_throws_like_famt_with_equal_weights(tmp_path):
    from mmengine.runner import Runner
    import famt_mm.analysis  # noqa: F401
    cfg = tiny_cfg(tmp_path / 'work', config=FAMT_DEMO, max_epochs=2)
    cfg.custom_hooks = [dict(type='UniformFAMTBankHook', start_epoch=1)]
    cfg.experiment_name = 'uniform_control'
    runner = Runner.from_cfg(cfg)
    runner.train()
    gen = runner.model.mask_generator
    maps = gen.bank.maps
    assert gen.famt_active and maps.shape == (40, 4, 4)
    assert bool((maps == maps.flatten()[0]).all())  # equal weights
    # the draw itself, on real samples of the training pipeline
    data = next(iter(runner.train_dataloader))
    ids_m, ids_t, ids_v = gen.sample(data['data_samples'], (4, 4), len(data['inputs']), 'cpu')
    assert (ids_m.shape[1], ids_t.shape[1], ids_v.shape[1]) == (7, 6, 3)  # .45 / .40 of 16


def test_the_experiment_runs_end_to_end_with_a_tiny_budget(tmp_path):
    out = tmp_path / 'out'
    proc = run_tool([TOOL, '--quick', '--table', 'main', '--seeds', '0', '--out-dir', str(out),
                     '--curve-fracs', '0.5', '--l2-grid', '1e-3'], timeout=600)
    assert '| FAMT (A x F) |' in proc.stdout and '| random init |' in proc.stdout
    with open(out / 'results.json') as f:
        result = json.load(f)
    runs = {(r['method'], r['mode']) for r in result['runs']}
    from famt_mm.analysis.experiment import TABLES
    assert runs == {('MAE', 'epochs')} | {(m, mode) for m in TABLES['main'] if m != 'MAE'
                                          for mode in ('epochs', 'time')}
    by = {(r['method'], r['mode']): r for r in result['runs']}
    mae = by['MAE', 'epochs']
    assert mae['train']['epochs'] == 2 and 'random_init' in mae
    for (method, mode), r in by.items():
        t = r['train']
        assert t['images'] > 0 and osp.isfile(t['checkpoint'])
        if mode == 'time':  # the budget is MAE's CPU seconds of the same seed
            assert r['budget_s'] == mae['train']['seconds'] <= t['seconds']
        else:
            assert t['epochs'] == 2
        for feat in ('cls', 'avg', 'cls_knn', 'avg_knn'):
            assert 0 <= r['probe'][feat]['top1'] <= 100
    famt = by['FAMT (A x F)', 'epochs']['train']
    assert [x['epoch'] for x in famt['refreshes']] == [1]  # start 1 of 2 epochs
    focus = famt['refreshes'][0]
    assert 0 < focus['object_area'] < 1 and 0 < focus['weight_on_object'] < 1
    assert focus['images'] == 40
    assert by['uniform, FAMT budget (.45/.40)', 'epochs']['train']['refreshes'] == []
    # the oracle's bank lies on the objects, the inverted oracle's off them
    oracle = by['oracle (objects masked)', 'epochs']['train']['refreshes']
    inverted = by['inverted oracle (objects visible)', 'epochs']['train']['refreshes']
    assert oracle[0]['lift'] > 1.2 and inverted[0]['lift'] < 0.8
    # one seed: the paired differences are there, without intervals
    paired = {(p['method'], p['mode'], p['baseline']) for p in result['paired']}
    assert ('FAMT + warm-up throw (.45/.40)', 'time', 'MAE') in paired and len(paired) == 18
    assert '**Paired differences**' in proc.stdout and '(1 seed)' in proc.stdout
    curve = by['FAMT (A x F)', 'time']['train']['snapshots']
    assert [s['frac'] for s in curve] == [0.5] and 'probe' in curve[0]
    assert osp.getsize(out / 'curves.png') > 1000
    assert '**Equal time' in (out / 'results.md').read_text()
    # a rerun finds every run's json and only summarises
    again = run_tool([TOOL, '--quick', '--seeds', '0', '--out-dir', str(out), '--report-only'])
    assert sum(line.startswith('| MAE |') for line in again.stdout.splitlines()) == 2
    assert '**Paired differences**' in again.stdout
    # the focus study on this experiment: MAE's init, snapshot and end, and a supervised encoder
    study = run_tool([osp.join(REPO, 'tools', 'analysis', 'famt_focus_study.py'),
                      '--experiment-dir', str(out), '--out-dir', str(tmp_path / 'study'),
                      '--sizes', '--supervised-epochs', '1', '--supervised-images', '60'])
    rows = json.loads((tmp_path / 'study' / 'focus_study.json').read_text())
    assert [r['kind'] for r in rows] == ['length'] * 3 + ['supervised']
    assert rows[-1]['images'] == 60  # trained on its own 60 images, focus on the 40
    assert [r['epochs'] for r in rows[:3]] == [0.0, curve_mae_epochs(mae), 2.0]
    for row in rows:
        assert set(row['focus']) == {'attention', 'frequency', 'product'}
        for f in row['focus'].values():
            assert f['images'] == 40 and 0 < f['object_area'] < 1 and f['lift'] > 0
            assert 0 < f['top_share'] <= 1 and f['top_lift'] >= 0
    assert 'lift attention' in study.stdout


def curve_mae_epochs(mae):
    return mae['train']['snapshots'][0]['epochs']


def test_probe_encoder_holds_the_checkpoint_position_embeddings(tmp_path):
    # VisionTransformer.init_weights re-draws pos_embed unless it was loaded first
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from famt_mm.analysis.probe import build_probe_encoder
    cfg = Config.fromfile(MAE_DEMO)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        model.backbone.pos_embed.normal_()
    path = str(tmp_path / 'mae.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    enc = build_probe_encoder(cfg.model.backbone, path)
    assert torch.equal(enc.pos_embed, model.backbone.pos_embed)
    assert torch.equal(enc.patch_embed.projection.weight,
                       model.backbone.patch_embed.projection.weight)


def test_top_patch_focus_finds_where_the_highest_weights_are():
    from famt_mm.analysis.focus_study import top_patch_focus
    covers = torch.tensor([[[1., 0.], [0., 0.]]])  # the object fills the top-left patch
    on = top_patch_focus(torch.tensor([[[6., 1.], [1., 2.]]]), covers, k=1)
    assert on['top_share'] == 0.6 and on['top_lift'] == 4.0  # 1 / (1/4)
    off = top_patch_focus(torch.tensor([[[1., 3.], [1., 7.]]]), covers, k=2)
    assert off['top_share'] == pytest.approx(10 / 12) and off['top_lift'] == 0.0


def test_paired_interval_matches_a_hand_computed_case():
    from famt_mm.analysis.stats import paired_interval, t_quantile_975, verdict
    # d = (2, 3, 2, 3, 3): mean 2.6, sd sqrt(1.2 / 4), t(0.975, 4) = 2.776
    iv = paired_interval([3, 5, 4, 6, 7], [1, 2, 2, 3, 4])
    half = 2.776 * (0.3 ** 0.5) / 5 ** 0.5  # 0.680
    assert iv['n'] == 5 and iv['mean'] == pytest.approx(2.6)
    assert iv['sd'] == pytest.approx(0.3 ** 0.5)
    assert (iv['low'], iv['high']) == (pytest.approx(2.6 - half), pytest.approx(2.6 + half))
    assert verdict(iv) == 'better'
    assert verdict(paired_interval([1, 2, 4], [2, 1, 3])) == 'no difference shown'
    assert verdict(paired_interval([0, 0, 0], [1, 1.2, 1.1])) == 'worse'
    one = paired_interval([1.0], [0.5])
    assert one['mean'] == 0.5 and one['low'] is None and verdict(one) == 'one seed'
    assert t_quantile_975(1) == 12.706 and t_quantile_975(30) == 2.042
    assert 1.96 < t_quantile_975(1000) < t_quantile_975(60) < t_quantile_975(30)
    assert t_quantile_975(60) == pytest.approx(2.000, abs=1e-3)
    with pytest.raises(ValueError, match='equal, non-zero lengths'):
        paired_interval([1, 2], [1])
    with pytest.raises(ValueError, match='int >= 1'):
        t_quantile_975(0)


def test_the_main_table_arms_configure_the_oracle_and_the_warm_up_throw(tmp_path):
    from famt_mm.analysis.experiment import TABLES, build_cfg
    settings = dict(epochs=24, clock='cpu', warmup_frac=0.1, famt_start_frac=0.25,
                    famt_interval_frac=0.25)
    cfgs = {m: build_cfg(m, str(tmp_path / 'w'), 0, settings) for m in TABLES['main']}
    oracle = cfgs['oracle (objects masked)'].model.mask_generator
    inverted = cfgs['inverted oracle (objects visible)'].model.mask_generator
    dataset = cfgs['MAE'].train_dataloader.dataset.to_dict()
    for gen in (oracle, inverted):  # FAMT's budget, weights from the training set's masks
        assert gen.terms == ('object_coverage', ) and (gen.mask_ratio, gen.throw_ratio) == (
            0.45, 0.40)
        assert gen.term_args['object_coverage']['dataset'] == dataset
    assert not oracle.term_args['object_coverage'].get('invert')
    assert inverted.term_args['object_coverage']['invert'] is True
    warm = cfgs['FAMT + warm-up throw (.45/.40)'].model.mask_generator
    famt = cfgs['FAMT (A x F)'].model.mask_generator
    assert (warm.random_mask_ratio, warm.random_throw_ratio) == (0.45, 0.40)
    assert famt.get('random_throw_ratio') is None and famt.random_mask_ratio == 0.75
    assert warm.terms == famt.terms == ('attention', 'frequency')
    assert [h.type for h in cfgs['FAMT + warm-up throw (.45/.40)'].custom_hooks] == [
        'FAMTWeightHook', 'FAMTFocusHook']
