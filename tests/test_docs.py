"""Every command in README.md and docs/*.md is checked here or mapped to the test that runs it.

For each shell command of a ```shell / ```bash block:

* the repo files it names (``configs/...``, ``tools/...``, ``docs/...``) exist;
* a ``python tools/X.py ...`` command (or a ``tools/*.sh`` launcher, mapped to the python
  tool it starts) parses its documented arguments with the tool's real argparse parser (the
  tool runs up to its ``parse_args`` call and stops there); the config it names loads, and
  every ``--cfg-options`` key it documents exists in that config;
* it is listed in ``COVERAGE`` (longest matching prefix) with the test that exercises it, a
  CI step, or ``static:`` and the reason only the checks above apply (multi-GPU / slurm).
  A new command with no entry fails ``test_every_documented_command_is_covered``.

The cheap documented flows also run for real here: the custom-folder recipe trains (tiny
overrides) on a folder of images, and the documented pre-training configs build their
models and take a loss step.
"""
import argparse
import glob
import os.path as osp
import re
import runpy
import shlex
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, run_tool

DOCS = [osp.join(REPO, 'README.md')] + sorted(glob.glob(osp.join(REPO, 'docs', '*.md')))

_MMDET_CFG = 'configs/mmdet/mask-rcnn_vit-b-p16-famt_simple-fpn_lsj-100e_coco.py'
_MMSEG_CFG = 'configs/mmseg/upernet_vit-b-p16-famt_8xb2-amp-160k_ade20k-512x512.py'
_MMDET_TEST = ('tests/test_transfer/test_mmdet_transfer.py::'
               'test_mask_rcnn_trains_and_tests_from_famt_backbone')
_MMSEG_TEST = ('tests/test_transfer/test_mmseg_transfer.py::'
               'test_upernet_trains_and_tests_from_famt_backbone')

# command prefix -> how it is exercised. 'tests/...::name' must name an existing test;
# 'ci:' a step of CI; 'static:' says why only the checks of this file apply.
COVERAGE = {
    'bash tools/run_demo.sh': 'ci: the Quick start demo, run by CI as written',
    'bash tools/run_tests.sh': 'ci: the test suite, run by CI as written',
    'bash tools/install.sh': 'ci: run first by tools/run_demo.sh and tools/run_tests.sh',
    'bash tools/install.sh --with-ops': 'ci: tools/run_tests.sh runs install.sh --tests '
                                        '(the ops and pytest)',
    'bash tools/compat_matrix.sh': 'static: installs two torch releases (minutes each); run '
                                   'by hand, its table is in the README',
    'bash tools/gpu_check.sh': 'tests/test_tools/test_gpu_check.py::'
                               'test_dry_run_prints_the_plan_and_runs_nothing',
    'python tools/analysis/flop_ratio.py':
        'tests/test_tools/test_flop_ratio.py::'
        'test_cli_on_a_simmim_pair_and_every_algorithm_has_a_known_pair',
    'python tools/analysis/benchmark_data.py':
        'tests/test_tools/test_benchmark_data.py::test_benchmark_data_cli_reports_every_pipeline',
    'python tools/train.py configs/famt_mae_vit-l_in1k.py':
        'tests/test_configs/test_inherited_recipes.py::'
        'test_inherited_vit_l_recipe_trains_through_the_switch_and_a_refresh',
    'python tools/train.py configs/famt_mae_vit-b_in1k.py --resume':
        'tests/test_tools/test_train_tools.py::test_train_writes_a_checkpoint_and_resume_continues',
    'python tools/train.py':
        'tests/test_tools/test_train_tools.py::test_famt_demo_config_trains_through_the_switch',
    'bash tools/dist_train.sh configs/famt_mae_vit-s_custom-folder.py':
        'tests/test_docs.py::test_custom_folder_recipe_trains_on_a_folder',
    # dist_train.sh is torch.distributed.run + tools/train.py --launcher pytorch
    'bash tools/dist_train.sh':
        'tests/test_engine/test_distributed_refresh.py::'
        'test_bank_of_two_processes_equals_bank_of_one',
    'bash tools/slurm_train.sh': 'static: needs srun; arguments parsed as train.py gets them',
    'bash tools/slurm_test.sh': 'static: needs srun; arguments parsed as test.py gets them',
    # docs/transfer.md (tiny versions of each flow in tests/test_transfer/)
    'python tools/model_converters/famt2target.py':
        'tests/test_transfer/test_converters.py::'
        'test_converted_keys_are_exactly_the_target_backbone_keys',
    f'python tools/train.py {_MMDET_CFG}': _MMDET_TEST,
    f'python tools/test.py {_MMDET_CFG}': _MMDET_TEST,
    f'python tools/train.py {_MMSEG_CFG}': _MMSEG_TEST,
    f'python tools/test.py {_MMSEG_CFG}': _MMSEG_TEST,
    f'bash tools/dist_train.sh {_MMDET_CFG}':
        'static: 8 GPUs; train.py runs it in tests/test_transfer',
    f'bash tools/dist_train.sh {_MMSEG_CFG}':
        'static: 8 GPUs; train.py runs it in tests/test_transfer',
    f'bash tools/dist_test.sh {_MMDET_CFG}':
        'static: 8 GPUs; test.py runs it in tests/test_transfer',
    f'bash tools/dist_test.sh {_MMSEG_CFG}':
        'static: 8 GPUs; test.py runs it in tests/test_transfer',
    # docs/evaluation.md (tiny versions in tests/test_eval/)
    'python tools/train.py configs/eval/':
        'tests/test_eval/test_linear_probe.py::'
        'test_linear_probe_trains_on_the_pretrained_frozen_encoder_and_tests',
    'python tools/test.py configs/eval/':
        'tests/test_eval/test_linear_probe.py::'
        'test_linear_probe_trains_on_the_pretrained_frozen_encoder_and_tests',
    'bash tools/dist_train.sh configs/eval/': 'static: 8 GPUs; train.py runs the recipe in '
                                              'tests/test_eval',
    'bash tools/dist_test.sh configs/eval/': 'static: 8 GPUs; test.py runs it in tests/test_eval',
    'python tools/analysis/mae_vs_famt_probe.py':
        'tests/test_eval/test_mae_vs_famt_probe.py::'
        'test_the_experiment_runs_end_to_end_with_a_tiny_budget',
    'python tools/analysis/famt_focus_study.py':
        'tests/test_eval/test_mae_vs_famt_probe.py::'
        'test_the_experiment_runs_end_to_end_with_a_tiny_budget',
    'python tools/analysis/bank_scale.py':
        'tests/test_bank/test_bank_file.py::test_bank_scale_tool_measures_a_small_bank',
    'python tools/analysis/benchmark_pretrain.py':
        'tests/test_tools/test_benchmark.py::test_benchmark_cli_reports_every_number',
    'python tools/analysis/benchmark_pretrain.py --algorithm simmim':
        'tests/test_tools/test_benchmark.py::test_benchmark_cli_simmim_pair',
    'python tools/train.py configs/famt_simmim_vit-t_demo.py':
        'tests/test_models/test_famt_simmim.py::'
        'test_famt_simmim_demo_trains_through_the_switch_and_a_refresh',
    'python tools/train.py configs/simmim_vit-t_demo.py':
        'tests/test_models/test_famt_simmim.py::'
        'test_plain_simmim_demo_config_takes_a_training_step',
    # OpenMMLab's launcher (README, Installation): openmim is not part of the test
    # environment; each call is parsed below as the famt_mm tool mim starts receives it
    'mim train famt_mm': 'static: needs openmim; mim runs famt_mm/.mim/tools/train.py with '
                         'these arguments (checked below; measured by hand, README)',
    'mim test famt_mm': 'static: needs openmim; mim runs famt_mm/.mim/tools/test.py',
    'mim run famt_mm': 'static: needs openmim; mim runs the named tool of famt_mm/.mim/tools',
    # shell steps around the tools
    'cd': 'static: moves into the user\'s data folder for the next step',
    'python -': 'static: an inline data-preparation script on the user\'s data, compiled here',
    'python -m pytest': 'ci: part of the suite that tools/run_tests.sh runs',
    'python tools/visualization/vis_famt_masks.py configs/mae_vit-t_demo.py':
        'tests/test_visualization.py::test_script_draws_a_plain_mae_in_process',
    'python tools/visualization/vis_famt_masks.py':
        'tests/test_visualization.py::test_script_draws_a_tiny_checkpoint',
}

# bash launcher -> (python tool it starts, arguments the tool receives, #positional args)
LAUNCHERS = {
    'tools/dist_train.sh': ('tools/train.py', lambda a: [a[0], '--launcher', 'pytorch'] + a[2:], 2),
    'tools/slurm_train.sh': ('tools/train.py',
                             lambda a: [a[2], f'--work-dir={a[3]}', '--launcher=slurm'] + a[4:], 4),
    'tools/dist_test.sh': ('tools/test.py',
                           lambda a: [a[0], a[1], '--launcher', 'pytorch'] + a[3:], 3),
    'tools/slurm_test.sh': ('tools/test.py', lambda a: [a[2], a[3], '--launcher=slurm'] + a[4:], 4),
}

# mim's own options of `mim train / test` (the rest goes to the tool)
_MIM_OPTIONS = {'--gpus', '-G', '--gpus-per-node', '--cpus-per-task', '--partition', '-p',
                '--srun-args', '--port', '-y', '--yes'}


def mim_to_tool(args):
    """(tool, its argv) of `mim train|test|run famt_mm ...`, as openmim 0.3 builds them."""
    sub, package, rest = args[0], args[1], list(args[2:])
    assert package == 'famt_mm', f'mim {sub} {package}: not this package'
    if sub == 'run':
        tools = glob.glob(osp.join(REPO, 'tools', '**', rest[0] + '.py'), recursive=True)
        assert len(tools) == 1, f'mim run: tools/**/{rest[0]}.py: {tools}'
        return osp.relpath(tools[0], REPO), [a for a in rest[1:] if a != '--']
    config, rest, launcher, checkpoint, out = rest[0], rest[1:], 'none', [], []
    while rest:
        key = rest.pop(0)
        if key in _MIM_OPTIONS:
            if key not in ('-y', '--yes'):
                rest.pop(0)
        elif key == '--launcher':
            launcher = rest.pop(0)
        elif key == '--checkpoint' and sub == 'test':
            checkpoint = [rest.pop(0)]
        else:
            out.append(key)
    tool = {'train': 'tools/train.py', 'test': 'tools/test.py'}[sub]
    return tool, [config] + checkpoint + ['--launcher', launcher] + out


_REPO_PATH = re.compile(r'^(configs|tools|docs|famt_mm|tests)/')
_ENV = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')


# -- extraction ----------------------------------------------------------------------
def code_blocks(path, languages):
    """(language, text, first line number) of the fenced blocks in ``languages``."""
    blocks, lines = [], open(path, encoding='utf-8').read().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r'^\s*```(\w+)\s*$', lines[i])
        if m:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith('```'):
                body.append(lines[i])
                i += 1
            if m.group(1) in languages:
                blocks.append((m.group(1), '\n'.join(body), start + 1))
        i += 1
    return blocks


def documented_commands():
    """Every shell command: (doc, line, env assignments dict, argv list, here-doc text).

    Lines are joined at trailing backslashes and split at ``&&`` / ``;``; a here-doc
    (``<<'EOF'`` ... ``EOF``) belongs to its command; a line that starts with an option
    (``--cfg-options ...``) is a fragment to add to other commands, not a command.
    """
    out = []
    for doc in DOCS:
        for _, text, line0 in code_blocks(doc, ('shell', 'bash', 'sh', 'console')):
            lines = text.replace('\\\n', ' ').splitlines()
            k = 0
            while k < len(lines):
                line, heredoc = lines[k], None
                m = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
                if m:
                    end = next((j for j in range(k + 1, len(lines))
                                if lines[j].strip() == m.group(1)), len(lines))
                    heredoc = textwrap.dedent('\n'.join(lines[k + 1:end]))
                    line = line[:m.start()] + line[m.end():]
                for part in re.split(r'&&|;', line):
                    tokens = shlex.split(part, comments=True)
                    env = {}
                    while tokens and _ENV.match(tokens[0]):
                        key, value = tokens.pop(0).split('=', 1)
                        env[key] = value
                    if tokens and not tokens[0].startswith('-'):
                        body = heredoc if tokens[-1] == '-' else None
                        out.append((osp.relpath(doc, REPO), line0 + k, env, tokens, body))
                k = end + 1 if m else k + 1
    return out


COMMANDS = documented_commands()


def command_id(cmd):
    doc, line, _, tokens, _ = cmd
    return f'{doc}:{line}:{" ".join(tokens)[:60]}'


def coverage_of(tokens):
    text = ' '.join(tokens)
    keys = [k for k in COVERAGE if text == k or text.startswith(k if k.endswith('/') else k + ' ')]
    return COVERAGE[max(keys, key=len)] if keys else None


# -- the tools' own parsers ----------------------------------------------------------
class _Parsed(Exception):
    def __init__(self, namespace, extras):
        super().__init__('parsed')
        self.namespace, self.extras = namespace, extras


def parse_with_tool(tool, argv, monkeypatch):
    """Run ``tool`` as __main__ with ``argv`` up to its argparse call; return the namespace."""
    source = open(osp.join(REPO, tool), encoding='utf-8').read()
    assert 'argparse' in source, f'{tool} has no argparse parser to check the documented call'
    original = argparse.ArgumentParser.parse_known_args

    def stop_after_parsing(self, args=None, namespace=None):
        ns, extras = original(self, args, namespace)
        raise _Parsed(ns, extras)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', stop_after_parsing)
    monkeypatch.setattr(sys, 'argv', [tool] + list(argv))
    monkeypatch.chdir(REPO)
    try:
        runpy.run_path(osp.join(REPO, tool), run_name='__main__')
    except _Parsed as parsed:
        assert not parsed.extras, f'{tool} does not know {parsed.extras}'
        return parsed.namespace
    except SystemExit as e:
        pytest.fail(f'{tool} {" ".join(argv)}: argparse refused the documented arguments ({e})')
    finally:
        monkeypatch.undo()
    pytest.fail(f'{tool} finished without parsing arguments')


_CONFIGS = {}


def load_config(path):
    from mmengine.config import Config
    if path not in _CONFIGS:
        _CONFIGS[path] = Config.fromfile(osp.join(REPO, path))
    return _CONFIGS[path]


def assert_key_exists(cfg, key, where):
    node = cfg
    for part in key.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif hasattr(node, 'keys') and part in node:
            node = node[part]
        else:
            pytest.fail(f'{where}: --cfg-options key {key!r} does not exist in the config '
                        f'(no {part!r})')


# -- checks of every command ---------------------------------------------------------
def test_docs_hold_commands_and_keep_the_quick_start():
    readme = [c for c in COMMANDS if c[0] == 'README.md']
    assert len(readme) >= 10
    quick = [' '.join(c[3]) for c in readme]
    assert 'bash tools/run_demo.sh' in quick and 'bash tools/run_tests.sh' in quick


def test_every_documented_command_is_covered():
    tests_seen = {}
    problems = []
    for cmd in COMMANDS:
        how = coverage_of(cmd[3])
        if how is None:
            problems.append(f'{command_id(cmd)}: not in COVERAGE (add the test that runs it)')
            continue
        if how.startswith(('ci:', 'static:')):
            continue
        path, name = how.split('::')
        if path not in tests_seen:
            full = osp.join(REPO, path)
            tests_seen[path] = open(full).read() if osp.isfile(full) else ''
        if not re.search(rf'^def {re.escape(name)}\(', tests_seen[path], re.M):
            problems.append(f'{command_id(cmd)}: mapped to {how}, which does not exist')
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('cmd', COMMANDS, ids=command_id)
def test_documented_command_names_real_files_and_parses(cmd, monkeypatch):
    doc, line, env, tokens, heredoc = cmd
    where = f'{doc}:{line}'
    for token in tokens:
        value = token.split('=', 1)[1] if token.startswith('--') and '=' in token else token
        if _REPO_PATH.match(value):
            assert osp.exists(osp.join(REPO, value)), f'{where}: {value} does not exist'
    program, args = tokens[0], tokens[1:]
    if program == 'cd':  # a step into the user's data folder
        return
    if program == 'python' and args[:1] == ['-']:  # an inline script (data preparation)
        assert heredoc, f'{where}: python - without a here-doc'
        compile(heredoc, where, 'exec')
        return
    if program == 'python' and args[:2] == ['-m', 'pytest']:
        return  # test paths checked above; the suite runs them
    if program == 'bash':
        script, args = args[0], args[1:]
        assert osp.isfile(osp.join(REPO, script)), f'{where}: {script} does not exist'
        subprocess.run(['bash', '-n', osp.join(REPO, script)], check=True)
        if script not in LAUNCHERS:
            if script == 'tools/install.sh' and not set(args) <= {'--with-ops', '--tests'}:
                pytest.fail(f'{where}: install.sh does not take {args}')
            return
        tool, to_tool, n_pos = LAUNCHERS[script]
        assert osp.basename(tool) in open(osp.join(REPO, script)).read(), \
            f'{script} no longer starts {tool}: update LAUNCHERS'
        assert len(args) >= n_pos, f'{where}: {script} takes {n_pos} positional arguments'
        if script.startswith('tools/dist_'):
            assert args[n_pos - 1].isdigit(), f'{where}: GPUS must be a number'
        for key in ('GPUS', 'GPUS_PER_NODE'):
            if key in env:
                assert env[key].isdigit(), f'{where}: {key}={env[key]}'
        tool_args = to_tool(args)
    elif program == 'python' and args and args[0].endswith('.py'):
        tool, tool_args = args[0], args[1:]
    elif program == 'mim':
        tool, tool_args = mim_to_tool(args)
    else:
        pytest.fail(f'{where}: {program!r} commands are not checked; document python tools/ '
                    'or bash tools/ commands, or extend tests/test_docs.py')
    ns = parse_with_tool(tool, tool_args, monkeypatch)
    config = getattr(ns, 'config', None)
    if config:
        cfg = load_config(config)
        for key in (getattr(ns, 'cfg_options', None) or {}):
            assert_key_exists(cfg, key, where)


# -- markdown links, config list, python snippets -------------------------------------
def test_relative_links_and_figures_exist():
    problems = []
    for doc in DOCS:
        text = open(doc, encoding='utf-8').read()
        for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', text):
            if re.match(r'^[a-z]+://', target):
                continue
            if not osp.exists(osp.normpath(osp.join(osp.dirname(doc), target))):
                problems.append(f'{osp.relpath(doc, REPO)}: {target}')
    assert not problems, 'broken links:\n' + '\n'.join(problems)
    figure = osp.join(REPO, 'docs', 'figures', 'famt_demo_masks.png')
    assert 20_000 < osp.getsize(figure) < 300_000


def test_configs_doc_lists_every_pretraining_config():
    text = open(osp.join(REPO, 'docs', 'configs.md'), encoding='utf-8').read()
    missing = [osp.relpath(p, REPO) for p in sorted(glob.glob(osp.join(REPO, 'configs', '*.py')))
               if f'`{osp.relpath(p, REPO)}`' not in text]
    assert not missing, f'docs/configs.md does not describe {missing}'


def test_python_snippets_compile_and_config_snippets_load(tmp_path):
    from mmengine.config import Config
    from mmpretrain.registry import HOOKS
    import famt_mm  # noqa: F401
    n_configs = 0
    for doc in DOCS:
        for _, text, line in code_blocks(doc, ('python',)):
            where = f'{osp.relpath(doc, REPO)}:{line}'
            compile(text, where, 'exec')
            if 'custom_hooks' not in text and '_base_' not in text:
                continue
            # a config snippet: load it where its first-line comment puts it (default configs/)
            m = re.match(r'#\s*(configs/\S+\.py)', text)
            home = osp.dirname(osp.join(REPO, m.group(1) if m else 'configs/x.py'))
            body = re.sub(r"_base_ = \[([^\]]*)\]", lambda b: '_base_ = [' + ', '.join(
                repr(osp.join(home, s.strip().strip('\'"'))) for s in b.group(1).split(',')
                if s.strip()) + ']', text)
            path = tmp_path / f'snippet_{n_configs}.py'
            path.write_text(body)
            cfg = Config.fromfile(str(path))
            for hook in cfg.get('custom_hooks', []):
                HOOKS.build(dict(hook))  # arguments the hook really takes
            n_configs += 1
    assert n_configs >= 2


# -- documented flows that run for real ------------------------------------------------
TINY_VIT_S = {
    'model.backbone.arch': dict(_delete_=True, embed_dims=32, num_layers=2, num_heads=2,
                                feedforward_channels=64),
    'model.backbone.img_size': 32, 'model.backbone.patch_size': 8,
    'model.neck.patch_size': 8, 'model.head.patch_size': 8, 'model.neck.num_patches': 16,
    'model.neck.embed_dim': 32, 'model.neck.decoder_embed_dim': 16,
    'model.neck.decoder_depth': 1, 'model.neck.decoder_num_heads': 2,
    'train_dataloader.batch_size': 4, 'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'train_dataloader.dataset.pipeline.1.scale': 32,
    'train_cfg.max_epochs': 2,
    'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=True)],
    'custom_hooks': [dict(type='FAMTWeightHook', start_epoch=1, interval=1, batch_size=4,
                          num_workers=0),
                     dict(type='FAMTVisualizationHook', indices=[0, 1])],
}


def test_custom_folder_recipe_trains_on_a_folder(tmp_path):
    """README 'Your own images': the documented config and --cfg-options, tiny model."""
    import cv2
    import numpy as np
    from mmengine.config import Config
    from famt_mm.compat import load_local_checkpoint
    folder = tmp_path / 'my_images'
    (folder / 'holiday').mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(10):  # any size, nested folders, no labels
        sub = folder / 'holiday' if i % 3 == 0 else folder
        cv2.imwrite(str(sub / f'img{i}.{"jpg" if i % 2 else "png"}'),
                    rng.integers(0, 255, (40 + i, 56, 3), dtype=np.uint8))
    (folder / 'notes.txt').write_text('not an image')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'famt_mae_vit-s_custom-folder.py'))
    cfg.merge_from_dict(TINY_VIT_S)
    cfg_file = str(tmp_path / 'custom_tiny.py')
    cfg.dump(cfg_file)
    work = tmp_path / 'work'
    documented = [c for c in COMMANDS if 'configs/famt_mae_vit-s_custom-folder.py' in c[3]]
    assert documented, 'README no longer documents the custom-folder recipe'
    options = documented[0][3][documented[0][3].index('--cfg-options') + 1:]
    options = [o.split('=')[0] + '=' + str(folder) if o.startswith(
        'train_dataloader.dataset.data_root=') else o for o in options]
    proc = run_tool(['tools/train.py', cfg_file, '--work-dir', str(work),
                     '--cfg-options'] + options)
    log = proc.stdout + proc.stderr
    assert 'FAMT refresh before epoch 2: 10 images' in log
    ckpt = load_local_checkpoint(str(work / 'epoch_2.pth'))
    assert ckpt['famt']['bank'].shape == (10, 4, 4)
    assert glob.glob(str(work / '*' / 'vis_data' / 'vis_image' / 'famt_masks_2.png'))


def test_documented_pretraining_configs_build_and_take_a_step():
    """The configs of the (multi-GPU) pre-training commands: model builds, one loss step."""
    import torch
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS, TRANSFORMS
    from mmpretrain.structures import DataSample
    import famt_mm  # noqa: F401
    init_default_scope('mmpretrain')
    configs = sorted({t for c in COMMANDS for t in c[3]
                      if re.match(r'^configs/[^/]+\.py$', t)})
    assert 'configs/famt_mae_vit-b_in1k.py' in configs and 'configs/mae_vit-b_in1k.py' in configs
    seen = set()
    torch.manual_seed(0)
    for path in configs:
        cfg = load_config(path)
        key = cfg.model.pretty_text if hasattr(cfg.model, 'pretty_text') else repr(cfg.model)
        if key in seen:
            continue
        seen.add(key)
        model_cfg = cfg.model.copy()
        model_cfg['data_preprocessor'] = cfg.data_preprocessor
        model = MODELS.build(model_cfg)
        size = int(cfg.model.backbone.get('img_size', 224))
        inputs = torch.randn(1, 3, size, size)
        samples = [DataSample(metainfo=dict(sample_idx=0, famt_crop=(0., 0., 1., 1.)))]
        for t in cfg.train_dataloader.dataset.pipeline:
            if t['type'] == 'SimMIMMaskGenerator':  # plain SimMIM reads its pipeline's mask
                samples[0].set_mask(TRANSFORMS.build(t).transform({})['mask'])
        with torch.no_grad():
            loss = model.loss(inputs, samples)['loss']
        assert torch.isfinite(loss), path
    assert len(seen) >= 4  # ViT-B / ViT-S, FAMT / MAE at least
