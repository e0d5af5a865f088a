"""Where famt_mm meets the machine and the library versions it runs on.

Applied on ``import famt_mm`` (configs pull it in with ``custom_imports``):

* Checkpoints are read as data. torch 2.6 made ``torch.load`` default to
  ``weights_only=True``, and mmengine <= 0.10.7 (its issue 1655, fixed only on its main
  branch) then cannot read its own checkpoints (message hub, numpy scalars), while on older
  torch its loader unpickles anything. On import, mmengine's loaders for local files,
  http(s) URLs and model-zoo names are registered (``CheckpointLoader.register_scheme``,
  its extension point) as ``famt_mm.checkpoint_io``'s: ``weights_only=True`` with the
  allow-list of the types those checkpoints hold (on torch 2.1 to 2.5 an unpickler admitting
  the same), on every torch. A file naming anything else is refused, naming the type;
  ``FAMT_TRUSTED_CHECKPOINTS`` opts a named file in.

``adapt_cfg_to_device`` rewrites, on a machine without a GPU, the parts of a
GPU config that cannot run on the CPU (AMP optimizer wrapper, nccl, GPU-only
DDP arguments), with a warning, so the same config serves tests and real runs.
Where the machine has an NVIDIA GPU that this torch cannot use (driver too old,
devices hidden, ...), it stops instead, naming the cause, unless the CPU run is
asked for (``FAMT_ALLOW_CPU=1`` or ``tools/train.py --allow-cpu``).
``require_mmcv_ops`` stops an mmdet / mmseg run at start when mmcv has no
compiled ops, saying how to get them. ``init_cpu_distributed`` starts a gloo
process group for ``torchrun`` / slurm launches on CPU (mmengine's
``init_dist`` always calls ``torch.cuda.set_device``).
"""
import copy
import glob
import os
import re
import warnings

import mmengine
import torch
from mmengine.logging import print_log

from .checkpoint_io import load_from_local, register_safe_loaders


def _release(version):
    """'2.6.0+cu124' -> (2, 6); '0.10.7' -> (0, 10, 7)."""
    return tuple(int(v) for v in re.findall(r'\d+', version.split('+')[0])[:3])


# The newest mmengine that loads with torch's default (no fixed release exists yet).
MMENGINE_LAST_UNFIXED = (0, 10, 7)


def needs_full_checkpoint_loading(torch_version=torch.__version__,
                                  mmengine_version=mmengine.__version__):
    """Whether mmengine's own local loader fails on its checkpoints here (torch >= 2.6,
    mmengine <= 0.10.7); famt_mm's safe loader is registered either way."""
    return (_release(torch_version)[:2] >= (2, 6)
            and _release(mmengine_version) <= MMENGINE_LAST_UNFIXED)


# Tests and tools read checkpoints through this name.
load_local_checkpoint = load_from_local
register_safe_loaders()

_AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')
# Oldest NVIDIA driver that runs each CUDA major version torch can be built with
# (CUDA's minor-version compatibility: the driver that shipped with x.0).
_MIN_DRIVER = {11: (450, 80), 12: (525, 60), 13: (580, 65)}
# CUDA_VISIBLE_DEVICES values that hide every device.
_HIDDEN = {'', '-1', 'none', 'nodevfiles', 'void'}


class GPUUnusableError(RuntimeError):
    """The machine has an NVIDIA GPU that this torch cannot use."""


def nvidia_devices(root='/'):
    """The NVIDIA GPUs the kernel driver exposes under ``root`` (``/dev/nvidia<N>``,
    ``/proc/driver/nvidia/gpus/*``); ``root`` points the probe at another tree in tests."""
    return sorted(glob.glob(os.path.join(root, 'dev', 'nvidia[0-9]*'))
                  + glob.glob(os.path.join(root, 'proc', 'driver', 'nvidia', 'gpus', '*')))


def nvidia_driver_version(root='/'):
    """(major, minor) of the loaded NVIDIA kernel driver, None when unknown."""
    try:
        with open(os.path.join(root, 'proc', 'driver', 'nvidia', 'version')) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r'Kernel Module\D*?(\d+)\.(\d+)', text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def cuda_unusable_cause(root='/', environ=None):
    """Why torch cannot use this machine's NVIDIA GPU; None when it can or there is none."""
    environ = os.environ if environ is None else environ
    if torch.cuda.is_available() or not nvidia_devices(root):
        return None
    if torch.version.cuda is None:
        return f'torch {torch.__version__} is a CPU-only build (install a CUDA build of torch)'
    visible = environ.get('CUDA_VISIBLE_DEVICES')
    if visible is not None and all(v.strip().lower() in _HIDDEN for v in visible.split(',')):
        return f'CUDA_VISIBLE_DEVICES={visible!r} hides every GPU'
    cuda_major = int(torch.version.cuda.split('.')[0])
    driver, needed = nvidia_driver_version(root), _MIN_DRIVER.get(cuda_major)
    if driver is not None and needed is not None and driver < needed:
        return (f'the NVIDIA driver {driver[0]}.{driver[1]:02d} is older than the '
                f'{needed[0]}.{needed[1]:02d} that torch {torch.__version__} (CUDA '
                f'{torch.version.cuda}) needs: update the driver or install a torch built '
                'for an older CUDA')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.device_count()  # torch warns why CUDA did not initialise
    said = '; '.join(str(w.message) for w in caught) or 'no reason given by torch'
    return f'torch.cuda.is_available() is False ({said})'


def check_gpu_usable(allow_cpu=None, root='/', environ=None):
    """Stop where an NVIDIA GPU is present but unusable, unless the CPU run is asked for.

    ``allow_cpu`` None reads ``FAMT_ALLOW_CPU`` (1 = run on the CPU anyway). Returns the
    cause when the CPU run goes ahead by request, else None.
    """
    environ = os.environ if environ is None else environ
    cause = cuda_unusable_cause(root, environ)
    if cause is None:
        return None
    if allow_cpu is None:
        allow_cpu = environ.get('FAMT_ALLOW_CPU', '0') not in ('', '0')
    if not allow_cpu:
        raise GPUUnusableError(
            f'This machine has an NVIDIA GPU, but torch cannot use it: {cause}. Not falling '
            'back to the CPU silently: fix that, or run on the CPU anyway with '
            'FAMT_ALLOW_CPU=1 (tools/train.py --allow-cpu).')
    return cause


def adapt_cfg_to_device(cfg, launcher='none', allow_cpu=None, root='/'):
    """Make a GPU config runnable on a machine without a usable GPU, in place.

    Stops (``GPUUnusableError``) where an NVIDIA GPU is present but unusable, unless
    ``allow_cpu`` (or ``FAMT_ALLOW_CPU=1``). Returns the list of changes made (also logged
    as warnings); an empty list where CUDA is available.
    """
    if torch.cuda.is_available():
        return []
    cause = check_gpu_usable(allow_cpu, root)
    changes = []
    optim = cfg.get('optim_wrapper')
    if optim is not None and optim.get('type') == 'AmpOptimWrapper':
        optim['type'] = 'OptimWrapper'
        for key in _AMP_ONLY_KEYS:
            optim.pop(key, None)
        changes.append('AmpOptimWrapper -> OptimWrapper (AMP needs a GPU)')
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        changes.append(f"dist backend {dist_cfg.get('backend', 'nccl')} -> gloo")
        dist_cfg['backend'] = 'gloo'
    if launcher != 'none':
        wrapper = copy.deepcopy(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        if wrapper.get('device_ids', 'unset') is not None:
            wrapper['device_ids'] = None  # DDP refuses device ids for CPU modules
            wrapper.setdefault('broadcast_buffers', False)
            wrapper.setdefault('find_unused_parameters',
                               cfg.get('find_unused_parameters', False))
            cfg['model_wrapper_cfg'] = wrapper
            changes.append('DDP without device_ids (CPU module)')
    why = f'GPU unusable ({cause}), CPU run asked for' if cause else 'No CUDA device'
    for change in changes:
        msg = f'{why}: {change}.'
        warnings.warn(msg)
        print_log(msg, logger='current', level=30)
    return changes


def require_mmcv_ops(cfg):
    """Stop an mmdet / mmseg config at start when mmcv has no compiled ops."""
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        return
    try:
        import mmcv._ext  # noqa: F401  RoIAlign, nms, ... that mmdet / mmseg models import
    except ImportError as e:
        import mmcv
        raise RuntimeError(
            f"This {scope} config needs mmcv's compiled ops, and mmcv {mmcv.__version__} here "
            f'has none ({e}). Get them with `bash tools/install.sh --with-ops` (builds mmcv '
            '2.1.0 with its ops, about 10 minutes; FORCE_CUDA=1 for CUDA ops), or install '
            "OpenMMLab's mmcv build for your torch and CUDA (README, Installation). "
            'Pre-training does not need them.') from None


def unresolvable_package_config(error, config_path):
    """Why ``pkg::`` in ``config_path`` (or its bases) failed although ``pkg`` imports, or None.

    mmengine resolves ``pkg::path`` through the *distribution* named in its ``MODULE2PACKAGE``
    (``mmseg`` -> ``mmsegmentation``): with a successor distribution (``onedl-mmsegmentation``)
    the module imports but mmengine says it is not installed. The text names the path to write
    instead (the package ships its configs in ``.mim/configs``).
    """
    import importlib.util
    from mmengine.config.utils import MODULE2PACKAGE
    m = re.match(r'(\S+) is not installed, please install', str(error))
    modules = [k for k, v in MODULE2PACKAGE.items() if m and v == m.group(1)]
    if not modules or importlib.util.find_spec(modules[0]) is None:
        return None
    module = modules[0]
    configs = os.path.join(os.path.dirname(importlib.util.find_spec(module).origin), '.mim',
                           'configs')
    return (f"{config_path}: mmengine cannot resolve '{module}::' bases here: it looks for a "
            f"distribution named '{m.group(1)}', and this environment's {module} comes from "
            f'another one (e.g. a successor package). Write the base by path instead: '
            f"'{module}::X' -> '{configs}/X'")


def init_cpu_distributed(launcher, backend='gloo', timeout=None):
    """Initialise torch.distributed on CPU for ``pytorch`` / ``slurm`` launches.

    ``timeout`` (seconds, as mmengine's ``env_cfg.dist_cfg.timeout``) bounds how
    long a collective waits for a rank that hangs without dying.
    """
    import datetime

    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return
    if launcher == 'slurm':
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            import subprocess
            nodes = os.environ['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {nodes} | head -n1')
    elif launcher != 'pytorch':
        raise ValueError(f'CPU distributed launch supports pytorch and slurm, not {launcher!r}')
    kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
    dist.init_process_group(backend=backend, **kwargs)
