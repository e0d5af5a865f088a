"""What tools/install.sh still has to do in this Python (standard library only).

    python -I tools/install_check.py missing ROOT [--with-ops] [--tests]
    python -I tools/install_check.py constraints      # pins that keep the installed torch

``missing`` prints one line per thing that is missing or wrong, ``KIND<TAB>detail``
(KIND: torch, torch-unsupported, pip, mmcv, mmcv-unsupported, mmcv-ops, famt_mm),
and nothing when the environment is complete. It runs in a fresh virtual
environment too: no third-party import (not even ``packaging``) is needed to
decide what is missing, and any other failure exits non-zero instead of reading
as "nothing missing".
"""
import importlib.metadata as md
import importlib.util
import os
import re
import sys

# The torch releases measured with famt_mm (tools/compat_matrix.sh, README "Installation").
TORCH_OLDEST = (2, 1)
TORCH_NEWEST_MEASURED = (2, 15)
# torch wheels built against NumPy 1.x stop working with NumPy 2 (torch < 2.4).
TORCH_NUMPY1 = (2, 4)
# mmpretrain 1.2 accepts mmcv [2.0.0, 2.4.0); mmdet 3.3 and mmseg 1.2 accept [2.0.0rc4, 2.2.0).
MMCV_PRETRAIN = ((2, 0, 0), (2, 4, 0))
MMCV_TRANSFER = ((2, 0, 0), (2, 2, 0))
# Requirement names handled outside plain ``pip install -r`` (torch pin, mmcv build).
SPECIAL = {'torch', 'torchvision', 'mmcv'}


def release(version):
    """'2.1.2+cu121' -> (2, 1, 2); '2.0.0rc4' -> (2, 0, 0)."""
    head = version.split('+')[0]
    return tuple(int(m) for m in re.findall(r'\d+', re.split(r'[a-zA-Z]', head)[0]))


def satisfies(version, spec):
    """``version`` meets every clause of ``spec`` ('==1.2', '>=1,<2', '' = any)."""
    have = release(version)
    for clause in filter(None, (c.strip() for c in spec.split(','))):
        op, want = re.match(r'(==|!=|>=|<=|<|>)\s*(.+)', clause).groups()
        want_t = release(want)
        width = max(len(have), len(want_t))
        a, b = have + (0,) * (width - len(have)), want_t + (0,) * (width - len(want_t))
        ok = {'==': a == b, '!=': a != b, '>=': a >= b, '<=': a <= b, '<': a < b, '>': a > b}[op]
        if not ok:
            return False
    return True


def requirements(root, name):
    """(name, spec, line) of each requirement line of requirements/<name>."""
    out = []
    for line in open(os.path.join(root, 'requirements', name), encoding='utf-8'):
        line = line.split('#')[0].strip()
        if line:
            m = re.match(r'([A-Za-z0-9_.\-]+)\s*(.*)', line)
            out.append((m.group(1), m.group(2).replace(' ', ''), line))
    return out


def version_of(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def torch_problems():
    have = version_of('torch')
    if have is None:
        return [('torch', 'not installed (the pinned torch of requirements/torch.txt goes in)')]
    if release(have)[:2] < TORCH_OLDEST:
        return [('torch-unsupported', f'torch {have} is older than the oldest supported '
                 f'{".".join(map(str, TORCH_OLDEST))}; install.sh never changes an installed '
                 'torch: upgrade it yourself or use a fresh virtual environment')]
    if version_of('torchvision') is None:
        return [('pip', 'torchvision (not installed; the release matching torch '
                 f'{have} goes in)')]
    try:
        import torchvision  # noqa: F401  (a torchvision built for another torch fails here)
    except Exception as e:  # noqa: BLE001  any import failure means "not working"
        return [('torch-unsupported', f'torchvision {version_of("torchvision")} does not work '
                 f'with torch {have} ({type(e).__name__}: {e}); install the torchvision build '
                 'made for your torch')]
    return []


def mmcv_problems(with_ops):
    dist = next((d for d in ('mmcv', 'mmcv-lite') if version_of(d)), None)
    if dist is None:
        return [('mmcv', 'not installed')]
    try:
        import mmcv
    except Exception as e:  # noqa: BLE001
        return [('mmcv', f'{dist} {version_of(dist)} does not import ({type(e).__name__}: {e})')]
    low, high = MMCV_TRANSFER if with_ops else MMCV_PRETRAIN
    if not low <= release(mmcv.__version__) < high:
        need = 'the mmdet/mmseg transfer' if with_ops else 'mmpretrain 1.2'
        return [('mmcv-unsupported', f'mmcv {mmcv.__version__} is installed; {need} needs '
                 f'mmcv >= {".".join(map(str, low))}, < {".".join(map(str, high))}; '
                 'install.sh keeps an installed mmcv: `pip uninstall mmcv` first to replace it')]
    if with_ops:
        try:
            import mmcv._ext  # noqa: F401  compiled ops
        except Exception as e:  # noqa: BLE001
            return [('mmcv-ops', f'{dist} {mmcv.__version__} has no compiled ops '
                     f'({type(e).__name__}: {e})')]
    return []


def missing(root, with_ops=False, with_tests=False):
    """[(kind, detail)] of what is missing; [] when the environment is complete."""
    problems = torch_problems()
    names = ['mminstall.txt', 'runtime.txt', 'optional.txt'] + (['tests.txt'] if with_tests else [])
    for name in names:
        for dist, spec, line in requirements(root, name):
            if dist in SPECIAL:
                continue
            have = version_of(dist)
            if have is None:
                problems.append(('pip', f'{line} (not installed)'))
            elif not satisfies(have, spec):
                problems.append(('pip', f'{line} (have {have})'))
    if not any(kind == 'pip' and detail.startswith('mmengine') for kind, detail in problems):
        problems += mmcv_problems(with_ops)  # importing mmcv needs mmengine
    else:
        problems.append(('mmcv', 'checked once mmengine is installed'))
    spec = importlib.util.find_spec('famt_mm')  # run with -I: the checkout is not on sys.path
    if spec is None or spec.origin is None:
        problems.append(('famt_mm', 'not installed'))
    elif not os.path.realpath(spec.origin).startswith(os.path.realpath(root) + os.sep):
        problems.append(('famt_mm', f'installed from {os.path.dirname(spec.origin)}, '
                         'not this checkout'))
    return problems


def constraints():
    """pip constraint lines that keep the installed torch as it is."""
    have = version_of('torch')
    if have is None:
        return []
    lines = [f'torch=={have}']
    if release(have)[:2] < TORCH_NUMPY1:
        lines.append('numpy<2')
    if release(have)[:2] > TORCH_NEWEST_MEASURED:
        print(f'[famt_mm install] note: torch {have} is newer than the newest measured with '
              f'famt_mm ({".".join(map(str, TORCH_NEWEST_MEASURED))})', file=sys.stderr)
    return lines


def main(argv):
    if argv[:1] == ['constraints']:
        print('\n'.join(constraints()))
        return 0
    if argv[:1] != ['missing'] or len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for kind, detail in missing(argv[1], '--with-ops' in argv, '--tests' in argv):
        print(f'{kind}\t{detail}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
