"""What tools/install.sh still has to do in this Python (standard library only).

    python -I tools/install_check.py missing ROOT [--with-ops] [--tests]
    python -I tools/install_check.py constraints      # pins that keep the installed torch
    python -I tools/install_check.py owner MODULE     # "DISTRIBUTION VERSION" or nothing

``missing`` prints one line per thing that is missing or wrong, ``KIND<TAB>detail``
(KIND: torch, torch-unsupported, pip, unsupported, conflict, mmcv, mmcv-unsupported,
mmcv-ops, famt_mm), and nothing when the environment is complete. A ``pip`` line's detail
starts with the requirement to install. It runs in a fresh virtual environment too: no
third-party import (not even ``packaging``) is needed to decide what is missing, and any
other failure exits non-zero instead of reading as "nothing missing".

A requirement is met by the importable module it provides, whatever the name of the
distribution that installed it: onedl-mmengine provides ``mmengine`` as mmengine does. A
module that is there in a version out of range is reported, never shadowed by a second
distribution of the same module (two distributions owning one folder break both).
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
# Requirement names handled outside plain ``pip install -r`` (torch pin, mmcv build).
SPECIAL = {'torch', 'torchvision', 'mmcv'}
# Module a requirement provides, where it is not the requirement's own name.
MODULE_OF = {'mmsegmentation': 'mmseg', 'opencv-python': 'cv2'}
# Distribution families that install the OpenMMLab modules; a missing module comes from
# the family of the installed mmengine (mmdet 3.3 refuses onedl-mmcv 2.3, say).
FAMILIES = {
    'openmmlab': {'mmengine': 'mmengine', 'mmcv': 'mmcv', 'mmpretrain': 'mmpretrain',
                  'mmdet': 'mmdet', 'mmseg': 'mmsegmentation'},
    'onedl': {'mmengine': 'onedl-mmengine', 'mmcv': 'onedl-mmcv',
              'mmpretrain': 'onedl-mmpretrain', 'mmdet': 'onedl-mmdetection',
              'mmseg': 'onedl-mmsegmentation'},
}


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


def normalized(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def module_owners():
    """{top-level module: [(distribution, version), ...]} of this Python's distributions."""
    owners = {}
    for dist in md.distributions():
        name = dist.metadata['Name']
        if not name:
            continue
        top = (dist.read_text('top_level.txt') or '').split()
        if not top:  # wheels without top_level.txt: the first part of each recorded file
            top = {f.parts[0].split('.')[0] for f in (dist.files or ())
                   if f.parts and not f.parts[0].endswith(('.dist-info', '.egg-info', '.pth'))
                   and f.parts[0] not in ('..', '__pycache__')}
        for module in set(top):
            entry = (name, dist.version)
            if entry not in owners.setdefault(module, []):
                owners[module].append(entry)
    return owners


def module_of(requirement):
    name = normalized(requirement)
    return MODULE_OF.get(name, name.replace('-', '_'))


def declared_version(spec):
    """``__version__`` written in the package's version.py / __init__.py (no import)."""
    folder = os.path.dirname(spec.origin or '')
    for name in ('version.py', '__init__.py'):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]",
                          open(path, encoding='utf-8').read(), re.M)
            if m:
                return m.group(1)
    return None


def owner_of(module, owners):
    """(distribution, version) that installed the importable ``module``, or None; a module no
    distribution records (a checkout on the path, say) reads its own __version__."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return None
    found = owners.get(module) or []
    return found[0] if found else ('(no distribution)', declared_version(spec))


def family(owners):
    """'onedl' where the installed mmengine (or mmcv) comes from onedl, else 'openmmlab'."""
    for module in ('mmengine', 'mmcv'):
        for dist, _ in owners.get(module, []):
            if normalized(dist).startswith('onedl-'):
                return 'onedl'
    return 'openmmlab'


def requirement_problems(dist, spec, line, owners):
    """What is wrong with one requirement line, judged by the module it provides."""
    module = module_of(dist)
    found = owners.get(module, [])
    # Only for the OpenMMLab modules: opencv-python beside opencv-python-headless is common
    # (other packages pull the headless one) and harmless.
    if len(found) > 1 and module in FAMILIES['openmmlab'] and importlib.util.find_spec(module):
        names = ', '.join(f'{d} {v}' for d, v in found)
        return [('conflict', f'{len(found)} distributions install the module {module} ({names}): '
                 'they overwrite each other\'s files; uninstall all but one and reinstall it')]
    owner = owner_of(module, owners)
    if owner is None:
        name = FAMILIES[family(owners)].get(module, dist)
        return [('pip', f'{name}{spec} (not installed)')]
    have_dist, have = owner
    if have is None:
        return [('unsupported', f'the module {module} is importable but no distribution '
                 f'records it; famt_mm needs {line}')]
    if satisfies(have, spec):
        return []
    if normalized(have_dist) == normalized(dist):  # pip upgrades that very distribution
        return [('pip', f'{line.replace(" ", "")} (have {have})')]
    return [('unsupported', f'{have_dist} {have} installs the module {module}; famt_mm needs '
             f'{module}{spec}. install.sh never installs a second distribution of a module: '
             f'upgrade {have_dist} within that range, or uninstall it and run this again')]


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


def declared_mmcv_range(module, names):
    """(low, high) mmcv range the installed ``module`` declares in its __init__.py, or None."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return None
    text = open(spec.origin, encoding='utf-8').read()
    found = [re.search(rf"^{n}\s*=\s*'([^']+)'", text, re.M) for n in names]
    if not all(found):
        return None
    return tuple(release(m.group(1)) for m in found)


def mmcv_problems(with_ops, owners):
    owner = owner_of('mmcv', owners)
    if owner is None:
        return [('mmcv', 'not installed')]
    dist = f'{owner[0]} {owner[1]}'
    try:
        import mmcv
    except Exception as e:  # noqa: BLE001
        return [('mmcv', f'{dist} does not import ({type(e).__name__}: {e})')]
    # The range each installed user of mmcv enforces at import (the onedl ones state none).
    users = [('mmpretrain', ('mmcv_minimum_version', 'mmcv_maximum_version'))]
    if with_ops:
        users += [('mmdet', ('mmcv_minimum_version', 'mmcv_maximum_version')),
                  ('mmseg', ('MMCV_MIN', 'MMCV_MAX'))]
    ranges = [(user, declared_mmcv_range(user, names)) for user, names in users]
    ranges = [(user, bounds) for user, bounds in ranges if bounds is not None]
    for user, (low, high) in ranges:
        if not low <= release(mmcv.__version__) < high:
            return [('mmcv-unsupported', f'mmcv {mmcv.__version__} ({dist}) is installed; '
                     f'{user} needs mmcv >= {".".join(map(str, low))}, < '
                     f'{".".join(map(str, high))}; install.sh keeps an installed mmcv: '
                     f'`pip uninstall {owner[0]}` first to replace it')]
    if with_ops:
        try:
            import mmcv._ext  # noqa: F401  compiled ops
        except Exception as e:  # noqa: BLE001
            return [('mmcv-ops', f'{dist} has no compiled ops ({type(e).__name__}: {e})')]
    return []


def missing(root, with_ops=False, with_tests=False):
    """[(kind, detail)] of what is missing; [] when the environment is complete."""
    problems = torch_problems()
    owners = module_owners()
    names = ['mminstall.txt', 'runtime.txt', 'optional.txt'] + (['tests.txt'] if with_tests else [])
    for name in names:
        for dist, spec, line in requirements(root, name):
            if dist not in SPECIAL:
                problems += requirement_problems(dist, spec, line, owners)
    if owner_of('mmengine', owners) is not None:
        problems += mmcv_problems(with_ops, owners)  # importing mmcv needs mmengine
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
    if argv[:1] == ['owner'] and len(argv) == 2:
        owner = owner_of(argv[1], module_owners())
        if owner is not None:
            print(f'{owner[0]} {owner[1]}')
        return 0
    if argv[:1] != ['missing'] or len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for kind, detail in missing(argv[1], '--with-ops' in argv, '--tests' in argv):
        print(f'{kind}\t{detail}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
