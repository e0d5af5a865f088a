"""tools/analysis/mae_vs_famt_probe.py: the budgeted loop, and the whole command with a
tiny model and a tiny budget."""
import importlib.util
import json
import os.path as osp

import pytest

from tests.conftest import MAE_DEMO, REPO, TINY_OPTIONS, run_tool, tiny_cfg

TOOL = osp.join(REPO, 'tools', 'analysis', 'mae_vs_famt_probe.py')


def _tool_module():
    spec = importlib.util.spec_from_file_location('mae_vs_famt_probe', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_budgeted_loop_stops_at_the_budget_and_saves_the_last_epoch(tmp_path):
    from mmengine.runner import Runner
    from famt_mm.compat import load_local_checkpoint
    tool = _tool_module()
    cfg = tiny_cfg(tmp_path / 'work', config=MAE_DEMO, max_epochs=3)
    budget = 1.5
    cfg.train_cfg = dict(type='BudgetedEpochBasedTrainLoop', budget_s=budget)
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 6,
                                        save_last=True, max_keep_ckpts=1)
    cfg.experiment_name = 'budgeted_loop'
    runner = Runner.from_cfg(cfg)
    runner.train()
    loop = runner.train_loop
    stats = loop.stats
    assert budget <= stats['train_seconds'] < budget + 10  # one step past it at most
    assert stats['images'] == len(stats['losses']) * 8 and stats['iters'] == loop.iter
    assert loop.epoch - 1 < stats['epochs'] <= loop.epoch
    ckpt = load_local_checkpoint(osp.join(str(tmp_path / 'work'), f'epoch_{loop.epoch}.pth'))
    assert ckpt['meta']['iter'] == loop.iter
    # the time-driven schedule: warm-up from ~0, peak at 10%, ~0 at the end
    assert loop.lr_factor(0.0) == pytest.approx(1e-3)
    assert loop.lr_factor(0.1) == pytest.approx(1.0)
    assert loop.lr_factor(1.0) == pytest.approx(0.0, abs=1e-12)
    assert runner.optim_wrapper.get_lr()['lr'][0] < 0.5 * 1.5e-4


def test_the_experiment_runs_end_to_end_with_a_tiny_budget(tmp_path):
    options = []
    for key, value in TINY_OPTIONS.items():
        if key.startswith('default_hooks'):
            continue
        if isinstance(value, dict):
            options += [f'{key}.{k}={v}' for k, v in value.items()]
        else:
            options.append(f'{key}={value}')
    out = tmp_path / 'out'
    proc = run_tool([TOOL, '--budget-s', '2', '--seeds', '0', '1', '--num-test', '24',
                     '--out-dir', str(out), '--cfg-options', *options], timeout=300)
    assert '| MAE |' in proc.stdout and '| FAMT |' in proc.stdout
    assert osp.getsize(out / 'results.png') > 1000
    with open(out / 'results.json') as f:
        result = json.load(f)
    assert [r['seed'] for r in result['runs']] == [0, 1]
    for run in result['runs']:
        for method in ('MAE', 'FAMT'):
            train = run[method]['train']
            assert train['train_seconds'] >= 2 and train['images'] > 0 and train['epochs'] > 0
            assert osp.isfile(run[method]['checkpoint'])
        for method in ('random init', 'MAE', 'FAMT'):
            for feat in ('cls', 'avg'):
                assert 0 <= run[method]['probe'][feat]['top1'] <= 100
        start, interval = run['FAMT']['schedule']
        assert start >= 1 and interval >= 1
        focus = run['FAMT']['object_focus']
        if run['FAMT']['train']['refreshes']:  # FAMT started within the budget
            assert 0 < focus['object_area'] < 1 and 0 < focus['weight_on_object'] < 1
            assert focus['images'] == 40
        else:
            assert focus is None
    assert result['settings']['num_train'] == 40
    summary = result['summary']
    assert summary['MAE']['cls_top1'][0] is not None
