"""Checkpoints are read as data (famt_mm.checkpoint_io): a crafted checkpoint whose unpickling
would create a file is refused, and the file is not created, through every entry point; every
checkpoint kind the stack writes still loads, exactly as a full unpickle reads it."""
import functools
import http.server
import os
import os.path as osp
import pickle
import threading

import numpy as np
import pytest
import torch

from famt_mm.checkpoint_io import (CHECKPOINT_GLOBALS, TRUST_ENV, UnsafeCheckpointError,
                                   checkpoint_globals, load_checkpoint_safely)
from tests.conftest import FAMT_DEMO, MAE_DEMO, tiny_cfg, write_tiny_config


class RunsShell:
    """Unpickling it runs ``touch marker`` (os.system), as a malicious file would."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class Reduced:
    """Unpickles to fn(*args); callable, as pickle wants in the reduce slot (never called)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __call__(self, *args):
        raise AssertionError('only the unpickled object is called')

    def __reduce__(self):
        return (self.fn, self.args)


def craft_checkpoint(path, marker):
    """A checkpoint that looks like mmengine's, with one object that runs a command."""
    torch.save({'meta': {'epoch': 1, 'iter': 5}, 'state_dict': {'w': torch.ones(2)},
                'message_hub': {'payload': RunsShell(marker)}}, str(path))
    return str(path)


def craft_getattr_chain(path, marker):
    """Only allow-listed globals (getattr, HistoryBuffer), chained into eval: what a plain
    ``getattr`` on the allow-list would let through."""
    from mmengine.logging.history_buffer import HistoryBuffer
    builtins = Reduced(getattr, Reduced(getattr, HistoryBuffer, 'update'), '__builtins__')
    evaluate = Reduced(Reduced(getattr, builtins, 'get'), 'eval')
    torch.save({'state_dict': {}, 'x': Reduced(evaluate, f"open({str(marker)!r}, 'w')")},
               str(path))
    return str(path)


@pytest.fixture
def crafted(tmp_path):
    marker = tmp_path / 'code_ran'
    return craft_checkpoint(tmp_path / 'crafted.pth', marker), marker


def assert_refused(err_info, path, marker, names='posix.system'):
    text = str(err_info.value)
    assert path in text and names in text and TRUST_ENV in text, text
    assert not marker.exists()


# -- the loader itself ----------------------------------------------------------------------
def test_crafted_file_is_refused_and_runs_only_when_trusted(crafted, monkeypatch):
    path, marker = crafted
    assert 'posix.system' in checkpoint_globals(path)  # read without unpickling
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint_safely(path)
    assert_refused(err, path, marker)
    monkeypatch.setenv(TRUST_ENV, os.pathsep.join([path + '.other', '/elsewhere.pth']))
    with pytest.raises(UnsafeCheckpointError):  # trusting other files trusts not this one
        load_checkpoint_safely(path)
    assert not marker.exists()
    # the opt-in names the file: then it is unpickled in full, and the payload really runs
    monkeypatch.setenv(TRUST_ENV, path)
    load_checkpoint_safely(path)
    assert marker.exists()


def test_allow_listed_getattr_gives_only_historybuffer_statistics(tmp_path, monkeypatch):
    marker = tmp_path / 'code_ran'
    path = craft_getattr_chain(tmp_path / 'chain.pth', marker)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint_safely(path)
    assert_refused(err, path, marker, names="HistoryBuffer,'update'")
    monkeypatch.setenv(TRUST_ENV, path)  # a full unpickle of the same file runs the code
    load_checkpoint_safely(path)
    assert marker.exists()


def test_damaged_file_is_not_called_unsafe(tmp_path):
    path = tmp_path / 'junk.pth'
    path.write_bytes(b'\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01')  # a pickle cut short
    with pytest.raises(Exception) as err:
        load_checkpoint_safely(str(path))
    assert not isinstance(err.value, UnsafeCheckpointError)


# -- every entry point ----------------------------------------------------------------------
def test_load_from_refuses_before_training(crafted, tmp_path):
    from mmengine.runner import Runner
    path, marker = crafted
    cfg = tiny_cfg(tmp_path / 'work', config=MAE_DEMO, max_epochs=1)
    cfg.load_from, cfg.experiment_name = path, 'safety_load_from'
    with pytest.raises(UnsafeCheckpointError) as err:
        Runner.from_cfg(cfg).train()
    assert_refused(err, path, marker)
    assert not osp.exists(tmp_path / 'work' / 'epoch_1.pth')


def test_resume_refuses_an_explicit_and_a_latest_checkpoint(crafted, tmp_path):
    from tools.train import main as train
    path, marker = crafted
    cfg = write_tiny_config(tmp_path / 'mae_tiny.py', config=MAE_DEMO, max_epochs=1)
    with pytest.raises(UnsafeCheckpointError) as err:  # --resume FILE: mmengine's resume
        train([cfg, '--work-dir', str(tmp_path / 'w1'), '--resume', path,
               '--cfg-options', 'experiment_name=safety_resume1'])
    assert_refused(err, path, marker)
    work = tmp_path / 'w2'  # --resume: the file last_checkpoint names
    work.mkdir()
    latest = craft_checkpoint(work / 'epoch_1.pth', marker)
    (work / 'last_checkpoint').write_text(latest)
    with pytest.raises(UnsafeCheckpointError) as err:
        train([cfg, '--work-dir', str(work), '--resume',
               '--cfg-options', 'experiment_name=safety_resume2'])
    assert_refused(err, latest, marker)


def test_resume_fallback_stops_at_a_crafted_older_checkpoint(legit, tmp_path):
    """The newest file is truncated (skipped as broken); the next one is crafted: the
    fallback refuses it, it does not skip it to resume from an even older file."""
    from famt_mm.engine.checkpointing import newest_loadable_checkpoint
    marker = tmp_path / 'code_ran'
    work = tmp_path / 'work'
    work.mkdir()
    good = work / 'epoch_1.pth'
    good.write_bytes(open(legit['famt_inline'], 'rb').read())
    crafted = craft_checkpoint(work / 'epoch_2.pth', marker)
    newest = work / 'epoch_3.pth'
    newest.write_bytes(good.read_bytes()[:1000])
    for age, p in enumerate((newest, crafted, good)):  # mtime order: 3, 2, 1
        os.utime(p, (1e9 - age, 1e9 - age))
    (work / 'last_checkpoint').write_text(str(newest))
    with pytest.raises(UnsafeCheckpointError) as err:
        newest_loadable_checkpoint(str(work))
    assert_refused(err, crafted, marker)
    os.remove(crafted)  # without it the fallback does its job: skip the broken one
    assert newest_loadable_checkpoint(str(work))[0] == str(good)


@pytest.mark.parametrize('initializer', ['Pretrained', 'StrictPretrained'])
def test_init_cfg_refuses(crafted, initializer):
    from mmpretrain.models.backbones import VisionTransformer

    import famt_mm  # noqa: F401  (StrictPretrained)
    path, marker = crafted
    backbone = VisionTransformer(
        arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        img_size=32, patch_size=8, init_cfg=dict(type=initializer, checkpoint=path))
    from famt_mm.transfer import load_strict_pretrained_modules
    with pytest.raises(UnsafeCheckpointError) as err:  # as StrictPretrainedHook loads it
        (load_strict_pretrained_modules if initializer == 'StrictPretrained'
         else type(backbone).init_weights)(backbone)
    assert_refused(err, path, marker)


def test_converter_refuses(crafted, tmp_path):
    from tools.model_converters.famt2target import main as convert
    path, marker = crafted
    with pytest.raises(SystemExit) as err:
        convert([path, str(tmp_path / 'out.pth'), '--target', 'mmdet'])
    assert_refused(err, path, marker)
    assert not osp.exists(tmp_path / 'out.pth')


def test_visualisation_refuses(crafted, tmp_path):
    import importlib.util

    from tests.conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'vis_famt_masks', osp.join(REPO, 'tools', 'visualization', 'vis_famt_masks.py'))
    vis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vis)
    path, marker = crafted
    cfg = write_tiny_config(tmp_path / 'famt_tiny.py', config=FAMT_DEMO)
    with pytest.raises(UnsafeCheckpointError) as err:
        vis.main([cfg, path, '--out-dir', str(tmp_path / 'vis'), '--device', 'cpu'])
    assert_refused(err, path, marker)
    assert not osp.exists(tmp_path / 'vis')


def test_test_tool_refuses(crafted, legit, tmp_path):
    from tests.test_eval.conftest import write_linear_probe_config
    from tools.test import main as test
    path, marker = crafted
    cfg = write_linear_probe_config(tmp_path / 'probe.py', legit['famt_inline'])
    with pytest.raises(UnsafeCheckpointError) as err:
        test([cfg, path, '--work-dir', str(tmp_path / 'w'),
              '--cfg-options', 'experiment_name=safety_test_tool'])
    assert_refused(err, path, marker)


def test_url_and_model_zoo_checkpoints_are_read_as_data(crafted, legit, tmp_path, monkeypatch):
    """load_from / init_cfg URLs (downloaded into torch's hub cache) and open-mmlab:// names
    (mmengine's table, extended by MMENGINE_HOME/open_mmlab.json) are read as data."""
    import json

    from mmengine.runner import CheckpointLoader
    path, marker = crafted
    served = tmp_path / 'served'
    served.mkdir()
    os.replace(path, served / 'crafted.pth')
    (served / 'good.pth').write_bytes(open(legit['converted'], 'rb').read())
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    craft_checkpoint(home / 'zoo_crafted.pth', marker)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)  # bound: accepts now
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f'http://127.0.0.1:{server.server_address[1]}'
    (home / 'open_mmlab.json').write_text(json.dumps(
        {'famt_zoo_file': 'zoo_crafted.pth', 'famt_zoo_url': f'{url}/crafted.pth'}))
    errors = {}
    try:
        good = CheckpointLoader.load_checkpoint(f'{url}/good.pth', map_location='cpu')
        for source in (f'{url}/crafted.pth', 'open-mmlab://famt_zoo_url',
                       'open-mmlab://famt_zoo_file'):
            with pytest.raises(UnsafeCheckpointError) as errors[source]:
                CheckpointLoader.load_checkpoint(source, map_location='cpu')
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    cached = str(tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'crafted.pth')
    assert_refused(errors[f'{url}/crafted.pth'], cached, marker)
    assert_refused(errors['open-mmlab://famt_zoo_url'], cached, marker)
    assert_refused(errors['open-mmlab://famt_zoo_file'], str(home / 'zoo_crafted.pth'), marker)
    assert same(good, torch.load(legit['converted']))


def test_bank_files_are_read_without_pickle(tmp_path):
    """Neither a pickle named .npy nor a valid .npy holding an object (pickled) array runs."""
    from famt_mm.bank.bank_file import open_bank_file
    marker = tmp_path / 'code_ran'
    raw = tmp_path / 'bank_epoch_0001.float16.npy'
    raw.write_bytes(pickle.dumps(RunsShell(marker), protocol=2))  # a pickle named .npy
    objects = tmp_path / 'bank_epoch_0002.float16.npy'
    np.save(str(objects), np.array([RunsShell(marker)], dtype=object), allow_pickle=True)
    for path in (raw, objects):
        with pytest.raises(ValueError, match='corrupt|pickled'):
            open_bank_file(str(path))
        assert not marker.exists()
    np.load(str(objects), allow_pickle=True)  # what a reader allowing pickles would do
    assert marker.exists()


# -- every legitimate kind still loads --------------------------------------------------------
@pytest.fixture(scope='module')
def legit(tmp_path_factory):
    """Checkpoints of the real code: FAMT (bank inline, bank file; with the config's own
    schedulers), mmpretrain MAE with an AMP loss-scaler state, converter output."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from tools.model_converters.famt2target import main as convert
    root = tmp_path_factory.mktemp('legit')
    out = {}
    for storage in ('inline', 'file'):
        cfg = tiny_cfg(root / storage, max_epochs=2)
        cfg.param_scheduler = Config.fromfile(FAMT_DEMO).param_scheduler
        cfg.custom_hooks = [dict(type='FAMTWeightHook', start_epoch=1, interval=1,
                                 batch_size=8, num_workers=0, bank_storage=storage)]
        cfg.experiment_name = f'safety_legit_{storage}'
        Runner.from_cfg(cfg).train()
        out[f'famt_{storage}'] = str(root / storage / 'epoch_2.pth')
    cfg = tiny_cfg(root / 'mae', config=MAE_DEMO, max_epochs=1)
    cfg.experiment_name = 'safety_legit_mae'
    Runner.from_cfg(cfg).train()
    ckpt = torch.load(str(root / 'mae' / 'epoch_1.pth'), weights_only=False)
    # what AmpOptimWrapper.state_dict adds (GradScaler needs no GPU to give its state)
    scaler = (torch.amp.GradScaler('cpu') if hasattr(torch.amp, 'GradScaler')
              else torch.cuda.amp.GradScaler(enabled=False))
    ckpt['optimizer']['loss_scaler'] = scaler.state_dict()
    torch.save(ckpt, str(root / 'mae_amp.pth'))
    out['mae_amp'] = str(root / 'mae_amp.pth')
    convert([out['famt_inline'], str(root / 'converted.pth'), '--target', 'mmdet'])
    out['converted'] = str(root / 'converted.pth')
    return out


def same(a, b):
    """Equal structure, types and values (tensors, arrays, objects' attributes)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    if hasattr(a, '__dict__') and not callable(a):
        return same(vars(a), vars(b))
    return a == b


def test_every_kind_loads_as_a_full_unpickle_reads_it(legit):
    from mmengine.runner import CheckpointLoader
    from torch import _weights_only_unpickler
    torch_own = set(_weights_only_unpickler._get_allowed_globals())
    named = set()
    for kind, path in legit.items():
        loaded = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        assert same(loaded, torch.load(path, weights_only=False)), kind
        assert same(load_checkpoint_safely(path, 'cpu', mmap=True), loaded), kind
        named |= checkpoint_globals(path) - torch_own
    # the allow-list is what these checkpoints name beyond torch's own list, and nothing else
    # (numpy 1 and 2 spell the same objects differently; torch 2.1's list lacks _codecs.encode)
    other_spelling = {n.replace('numpy._core', 'numpy.core') for n in named} | {
        n.replace('numpy.core', 'numpy._core') for n in named}
    assert named <= set(CHECKPOINT_GLOBALS)
    assert set(CHECKPOINT_GLOBALS) <= named | other_spelling | torch_own


def test_resume_of_a_famt_checkpoint_restores_the_bank_file(legit, tmp_path):
    from mmengine.runner import Runner

    from famt_mm.bank.bank_file import open_bank_file
    saved = torch.load(legit['famt_file'], weights_only=False)['famt']
    cfg = tiny_cfg(tmp_path / 'work', max_epochs=2)  # resumed at the end: nothing to train
    cfg.custom_hooks = [dict(type='FAMTWeightHook', start_epoch=1, interval=1, batch_size=8,
                             num_workers=0, bank_storage='file')]
    cfg.load_from, cfg.resume = legit['famt_file'], True
    cfg.experiment_name = 'safety_resume_bank'
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = [h for h in runner.hooks if type(h).__name__ == 'FAMTWeightHook'][0]
    assert saved['bank'] is None and hook.bank_epoch == saved['bank_epoch'] is not None
    on_disk = open_bank_file(osp.join(osp.dirname(legit['famt_file']), 'famt_bank',
                                      saved['bank_file']))
    assert torch.equal(hook.bank.float(), torch.from_numpy(np.asarray(on_disk)).float())
