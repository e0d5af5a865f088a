"""Importing famt_mm (every subpackage) leaves the classes of mmengine, mmpretrain, mmdet, mmseg
and mmcv as they were: no method or property of theirs is replaced or added. (Registering
modules, hooks, initializers or checkpoint schemes through the libraries' registries is their
extension point and not a patch.) The checkpoint schemes famt_mm registers (local files, http,
model-zoo names) read checkpoints as data: with famt_mm imported, mmengine's loader refuses a
crafted file."""
import os
import subprocess
import sys

import torch

from tests.conftest import REPO

SNAPSHOT = r'''
import importlib, pkgutil, sys
import mmengine.hooks, mmengine.model, mmengine.runner, mmengine.optim, mmengine.dataset
import mmpretrain.models, mmpretrain.datasets, mmpretrain.engine
import mmdet.models, mmdet.datasets
import mmseg.models, mmseg.datasets
ROOTS = ('mmengine', 'mmpretrain', 'mmdet', 'mmseg', 'mmcv')

def snapshot():
    out = {}
    for name, mod in list(sys.modules.items()):
        if not name.startswith(ROOTS) or mod is None:
            continue
        for attr, cls in list(vars(mod).items()):
            if isinstance(cls, type) and cls.__module__ == name:
                for key, value in list(vars(cls).items()):
                    # methods, properties, descriptors; not data such as registry tables
                    if callable(value) or isinstance(value, (classmethod, staticmethod,
                                                             property)):
                        out[(name, attr, key)] = value
    return out

from mmengine.runner.checkpoint import CheckpointLoader
schemes = dict(CheckpointLoader._schemes)
before = snapshot()
import famt_mm
for info in pkgutil.walk_packages(famt_mm.__path__, 'famt_mm.'):
    importlib.import_module(info.name)
after = snapshot()
changed = sorted('.'.join(k) for k, v in before.items() if after.get(k, v) is not v)
added = sorted('.'.join(k) for k in after if k not in before
               and k[0] in {n for n, _, _ in before})
print('classes', len({k[:2] for k in before}), 'attributes', len(before))
print('CHANGED', changed)
print('ADDED', [a for a in added if not a.endswith('._abc_impl')])
print('SCHEMES', sorted((p, f'{v.__module__}.{v.__name__}')
                        for p, v in CheckpointLoader._schemes.items() if schemes.get(p) is not v))
'''


def snapshot_diff(famt_root=REPO):
    """(stdout lines as a dict) of the snapshot script with ``famt_root`` on the path."""
    proc = subprocess.run([sys.executable, '-c', SNAPSHOT], cwd=famt_root, capture_output=True,
                          text=True, timeout=300,
                          env={'PYTHONPATH': famt_root, 'OMP_NUM_THREADS': '1',
                               'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(line.split(' ', 1) for line in proc.stdout.splitlines())


def test_importing_famt_mm_patches_no_upstream_class():
    lines = snapshot_diff()
    n_classes = int(lines['classes'].split()[0])
    assert n_classes > 1000  # the snapshot really covers the four libraries
    assert lines['CHANGED'] == '[]', lines['CHANGED']
    assert lines['ADDED'] == '[]', lines['ADDED']
    # the only loaders replaced: local files, http(s) and model-zoo names, by ones reading data
    zoo = 'famt_mm.checkpoint_io.load_from_model_zoo'
    assert lines['SCHEMES'] == str([
        ('', 'famt_mm.checkpoint_io.load_from_local'),
        ('http://', 'famt_mm.checkpoint_io.load_from_http'),
        ('https://', 'famt_mm.checkpoint_io.load_from_http'),
        ('mmcls://', zoo), ('modelzoo://', zoo), ('open-mmlab://', zoo), ('openmmlab://', zoo),
        ('torchvision://', zoo)]), lines['SCHEMES']


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_with_famt_mm_imported_mmengine_refuses_a_crafted_checkpoint(tmp_path):
    """The issue's check, as a user runs it."""
    marker = tmp_path / 'code_ran'
    path = str(tmp_path / 'crafted.pth')
    torch.save({'state_dict': {}, 'x': RunsShell(marker)}, path)
    check = ('import famt_mm; from mmengine.runner import CheckpointLoader; '
             f'CheckpointLoader.load_checkpoint({path!r})')
    proc = subprocess.run([sys.executable, '-c', check], cwd=REPO, capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode != 0
    assert 'UnsafeCheckpointError' in proc.stderr and 'posix.system' in proc.stderr
    assert 'FAMT_TRUSTED_CHECKPOINTS' in proc.stderr
    assert not marker.exists()
