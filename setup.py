"""famt_mm: FAMT (Frequency & Attention-driven Masking and Throwing) for MAE in OpenMMLab."""
import os.path as osp

from setuptools import find_packages, setup


def readme():
    with open(osp.join(osp.dirname(__file__), 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version():
    ns = {}
    with open(osp.join(osp.dirname(__file__), 'famt_mm', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), ns)
    return ns['__version__']


def parse_requirements(*names):
    reqs = []
    for name in names:
        with open(osp.join(osp.dirname(__file__), 'requirements', name)) as f:
            for line in f:
                line = line.split('#')[0].strip()
                if line:
                    reqs.append(line)
    return reqs


setup(
    name='famt_mm',
    version=get_version(),
    description='FAMT masking and throwing for MAE pre-training, as OpenMMLab components',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['famt_mm', 'famt_mm.*']),
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
