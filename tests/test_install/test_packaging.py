"""Packaging: a wheel built from the repository carries configs, tools and requirements in
famt_mm/.mim (what `mim train / test / run famt_mm ...` read from an installed package), and
tools/install_check.py judges a requirement by the module a distribution of any name
installed (real distributions installed with `pip install --target`)."""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

from tests.conftest import REPO


def tracked_copy(dst):
    """The repository's tracked files under ``dst`` (builds leave the checkout alone)."""
    files = subprocess.run(['git', 'ls-files'], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split('\n')
    for rel in filter(None, files):
        os.makedirs(osp.dirname(osp.join(dst, rel)) or dst, exist_ok=True)
        shutil.copy2(osp.join(REPO, rel), osp.join(dst, rel))
    return files


def test_the_wheel_holds_configs_tools_and_requirements_under_dot_mim(tmp_path):
    src = tmp_path / 'src'
    files = tracked_copy(str(src))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--disable-pip-version-check', '-q',
                    '--no-deps', '--no-build-isolation', '-w', str(tmp_path / 'dist'), str(src)],
                   check=True, capture_output=True, timeout=300)
    wheel, = glob.glob(str(tmp_path / 'dist' / 'famt_mm-*.whl'))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [f for f in files if f.startswith(('configs/', 'tools/', 'requirements/'))]
    assert 'configs/famt_mae_vit-t_demo.py' in shipped and 'tools/train.py' in shipped
    missing = [f for f in shipped if f'famt_mm/.mim/{f}' not in names]
    assert not missing, missing
    assert 'famt_mm/__init__.py' in names
    assert not [n for n in names if n.startswith('famt_mm/.mim/') and '__pycache__' in n]


def fake_distribution(root, name, version, module):
    """Install a distribution ``name`` that provides ``module`` into ``root`` (--target)."""
    src = osp.join(root, 'src-' + name)
    os.makedirs(osp.join(src, module))
    with open(osp.join(src, module, '__init__.py'), 'w') as f:
        f.write(f"__version__ = '{version}'\n")
    with open(osp.join(src, 'setup.py'), 'w') as f:
        f.write('from setuptools import setup\n'
                f"setup(name='{name}', version='{version}', packages=['{module}'])\n")
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--disable-pip-version-check', '-q',
                    '--no-deps', '--no-build-isolation', '--no-index', '--target',
                    osp.join(root, 'site'), src], check=True, capture_output=True, timeout=300)


def test_install_check_judges_by_module_whatever_the_distribution_name(tmp_path):
    root = str(tmp_path)
    fake_distribution(root, 'onedl-mmtoy', '1.5.2', 'mmtoy')
    fake_distribution(root, 'onedl-mmengine', '0.10.12', 'mmengine')
    sys.path.insert(0, osp.join(REPO, 'tools'))
    sys.path.append(osp.join(root, 'site'))  # after the real mmengine: it stays importable
    try:
        import install_check as ic
        owners = ic.module_owners()
        assert ('onedl-mmtoy', '1.5.2') in owners['mmtoy']
        # In range: kept, nothing to install under the requirement's own name.
        assert ic.requirement_problems('mmtoy', '>=1.2,<=1.6', 'mmtoy>=1.2,<=1.6', owners) == []
        # Out of range: named, with the distribution that owns the module; no pip line.
        problems = ic.requirement_problems('mmtoy', '>=2.0', 'mmtoy>=2.0', owners)
        assert [kind for kind, _ in problems] == ['unsupported']
        assert 'onedl-mmtoy 1.5.2 installs the module mmtoy' in problems[0][1]
        # Two distributions of one OpenMMLab module (mmengine and onedl-mmengine): a conflict.
        problems = ic.requirement_problems('mmengine', '>=0.10.7', 'mmengine>=0.10.7', owners)
        assert [kind for kind, _ in problems] == ['conflict']
        assert 'onedl-mmengine 0.10.12' in problems[0][1]
        # A missing module comes from the family of the installed mmengine.
        assert ic.family(owners) == 'onedl'
        problems = ic.requirement_problems('mmnothere', '', 'mmnothere', owners)
        assert problems == [('pip', 'mmnothere (not installed)')]
        # A module no distribution records (a checkout on the path) reads its __version__.
        os.makedirs(osp.join(root, 'site', 'mmplain'))
        with open(osp.join(root, 'site', 'mmplain', '__init__.py'), 'w') as f:
            f.write("__version__ = '2.0.1'\n")
        assert ic.owner_of('mmplain', owners) == ('(no distribution)', '2.0.1')
        assert ic.requirement_problems('mmplain', '>=2.0', 'mmplain>=2.0', owners) == []
    finally:
        sys.path.remove(osp.join(root, 'site'))
        sys.path.remove(osp.join(REPO, 'tools'))
        sys.modules.pop('install_check', None)


def test_the_version_is_the_newest_release_of_the_changelog():
    import re

    import famt_mm
    text = open(osp.join(REPO, 'CHANGELOG.md'), encoding='utf-8').read()
    newest = re.search(r'^## (\d+\.\d+\.\d+) ', text, re.M).group(1)
    assert famt_mm.__version__ == newest
    assert famt_mm.version.version_info == tuple(int(p) for p in newest.split('.'))
