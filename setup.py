"""famt_mm: FAMT (Frequency & Attention-driven Masking and Throwing) for MAE in OpenMMLab."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
# What OpenMMLab's mim reads from an installed package's .mim folder (mim train / test / run).
MIM_FILES = ('configs', 'tools', 'requirements')


def readme():
    with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version():
    ns = {}
    with open(osp.join(HERE, 'famt_mm', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), ns)
    return ns['__version__']


def add_mim_extension():
    """Put configs, tools and requirements inside the package as famt_mm/.mim/.

    Links to the checkout for an editable install (edits show at once), copies for a wheel or
    an sdist (the installed package carries them). A tree without the originals (a build from
    the sdist) keeps the .mim it came with.
    """
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'link' if os.name != 'nt' else 'copy'  # Windows links need privileges
    elif {'sdist', 'bdist_wheel', 'build', 'build_py', 'install'} & set(sys.argv):
        mode = 'copy'
    else:
        return  # metadata only (egg_info, dist_info)
    mim = osp.join(HERE, 'famt_mm', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        source, target = osp.join(HERE, name), osp.join(mim, name)
        if not osp.exists(source):
            continue
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        if mode == 'link':
            os.symlink(osp.relpath(source, mim), target)
        else:
            shutil.copytree(source, target, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


def mim_package_data():
    """famt_mm/.mim's files, relative to the package (setuptools ships them as data)."""
    root = osp.join(HERE, 'famt_mm')
    files = []
    for top, dirs, names in os.walk(osp.join(root, '.mim'), followlinks=True):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        files += [osp.relpath(osp.join(top, n), root) for n in names if not n.endswith('.pyc')]
    return files


def parse_requirements(*names):
    reqs = []
    for name in names:
        with open(osp.join(HERE, 'requirements', name)) as f:
            for line in f:
                line = line.split('#')[0].strip()
                if line:
                    reqs.append(line)
    return reqs


add_mim_extension()
setup(
    name='famt_mm',
    version=get_version(),
    description='FAMT masking and throwing for MAE pre-training, as OpenMMLab components',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['famt_mm', 'famt_mm.*']),
    package_data={'famt_mm': mim_package_data()},
    python_requires='>=3.8',
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        'mim': parse_requirements('mminstall.txt'),
        'tests': parse_requirements('tests.txt'),
        'optional': parse_requirements('optional.txt'),
    },
    license='Apache-2.0',
    zip_safe=False,
)
