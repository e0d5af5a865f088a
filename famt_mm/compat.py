"""Fixes for what the modern torch stack breaks in mmengine 0.10.7 / mmpretrain 1.2.

Applied on ``import famt_mm`` (configs pull it in with ``custom_imports``):

* torch >= 2.6 loads with ``weights_only=True`` by default, but checkpoints
  written by mmengine hold non-tensor objects (message hub, numpy scalars,
  config), so ``load_checkpoint``, ``resume`` and ``load_from`` raise
  ``UnpicklingError``. mmengine's local-file loader is re-registered to read
  them as torch < 2.6 did. Checkpoints are trusted files, exactly as before.

``adapt_cfg_to_device`` rewrites, on a machine without CUDA, the parts of a
GPU config that cannot run on CPU (AMP optimizer wrapper, nccl, GPU-only DDP
arguments), with a warning, so the same config serves tests and real runs.
``init_cpu_distributed`` starts a gloo process group for ``torchrun`` /
slurm launches on CPU (mmengine's ``init_dist`` always calls
``torch.cuda.set_device``).
"""
import copy
import os
import warnings

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader


def _torch_loads_weights_only_by_default() -> bool:
    major, minor = (int(v) for v in torch.__version__.split('.')[:2])
    return (major, minor) >= (2, 6)


def load_local_checkpoint(filename, map_location=None):
    """mmengine's local loader, reading full (trusted) checkpoints on any torch."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if _torch_loads_weights_only_by_default():
        return torch.load(filename, map_location=map_location, weights_only=False)
    return torch.load(filename, map_location=map_location)


CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)

_AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')


def adapt_cfg_to_device(cfg, launcher='none'):
    """Make a GPU config runnable on a CPU-only machine, in place.

    Returns the list of changes made (also logged as warnings); an empty
    list where CUDA is available.
    """
    if torch.cuda.is_available():
        return []
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
    for change in changes:
        msg = f'No CUDA device: {change}.'
        warnings.warn(msg)
        print_log(msg, logger='current', level=30)
    return changes


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
