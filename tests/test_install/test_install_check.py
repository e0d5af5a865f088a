"""tools/install_check.py: what tools/install.sh still has to do, decided without any
third-party package (a fresh virtual environment has none)."""
import os.path as osp
import subprocess
import sys

from tests.conftest import REPO

CHECK = osp.join(REPO, 'tools', 'install_check.py')


def test_a_bare_virtual_environment_lists_everything_instead_of_crashing(tmp_path):
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    proc = subprocess.run([str(venv / 'bin' / 'python'), '-I', CHECK, 'missing', REPO,
                           '--tests'], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    kinds = {line.split('\t')[0]: line.split('\t')[1] for line in proc.stdout.splitlines()}
    assert kinds['torch'].startswith('not installed')
    assert kinds['mmcv'] == 'checked once mmengine is installed'
    assert kinds['famt_mm'] == 'not installed'
    wanted = [line.split('\t')[1].split()[0] for line in proc.stdout.splitlines()
              if line.startswith('pip\t')]
    # A bare environment gets the OpenMMLab family, each within requirements/mminstall.txt.
    for name in ('mmengine>=0.10.7,', 'mmpretrain>=1.2.0,', 'mmdet>=3.3.0,', 'pytest>=7'):
        assert any(w.startswith(name) for w in wanted), (name, wanted)


def test_constraints_pin_the_installed_torch_exactly():
    import importlib.metadata
    proc = subprocess.run([sys.executable, '-I', CHECK, 'constraints'], capture_output=True,
                          text=True, timeout=60, check=True)
    lines = proc.stdout.split()
    have = importlib.metadata.version('torch')  # what pip compares, as installed
    assert lines[0] == f'torch=={have}'
    major, minor = (int(v) for v in have.split('.')[:2])
    assert ('numpy<2' in lines) == ((major, minor) < (2, 4))


def test_version_clauses():
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        from install_check import release, satisfies
    finally:
        sys.path.pop(0)
    assert release('2.1.2+cu121') == (2, 1, 2) and release('2.0.0rc4') == (2, 0, 0)
    assert satisfies('2.2.6', '>=1.23,<2.3') and not satisfies('2.3.0', '>=1.23,<2.3')
    assert satisfies('0.10.7', '==0.10.7') and not satisfies('0.10.6', '==0.10.7')
    assert satisfies('4.12.0.88', '>=4.8,<4.13') and satisfies('1.0', '')
