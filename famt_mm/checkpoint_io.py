"""Checkpoints are read as data: ``torch.load(weights_only=True)`` with an explicit allow-list.

A pickle can call any function while it is read, so a downloaded checkpoint could run code.
Every checkpoint famt_mm reads (mmengine's ``load_from`` / ``resume``, ``init_cfg`` with
``Pretrained`` or ``StrictPretrained``, the converters, the visualisation, the resume fallback)
goes through :func:`load_checkpoint_safely`: tensors, containers and exactly the non-tensor
types that checkpoints written by mmengine, mmpretrain, mmdet, mmseg and famt_mm hold
(``CHECKPOINT_GLOBALS``, found by writing each kind and listing its pickle's globals) load;
a file naming any other global is refused before anything in it runs, with an
:class:`UnsafeCheckpointError` naming the types, the file and the opt-in.

Opt-in for a file you trust that holds other types: list it in ``FAMT_TRUSTED_CHECKPOINTS``
(paths separated by ``os.pathsep``); only those files are unpickled in full.

torch >= 2.6: torch's weights-only unpickler with the allow-list added for the one load
(``torch.serialization.safe_globals``). Older torch (2.1 to 2.5; their weights-only unpickler
has a fixed list and no name-to-object form): a standard unpickler whose ``find_class`` admits
only torch's own weights-only globals of that version and the same allow-list.
``register_safe_loaders`` makes this mmengine's loader for local files, http(s) URLs and the
model-zoo names (``torchvision://``, ``open-mmlab://``, ``mmcls://``).
"""
import importlib
import os
import os.path as osp
import pickle
import pickletools
import re
import types
import zipfile
from typing import Dict, FrozenSet, Optional, Sequence

import torch

TRUST_ENV = 'FAMT_TRUSTED_CHECKPOINTS'

# The globals, besides torch's own tensor / storage / OrderedDict ones, that the pickles of
# mmengine training checkpoints (message hub, optimizer, schedulers, AMP loss scaler, meta),
# mmpretrain MAE / SimMIM and famt_mm FAMT checkpoints (bank inline or as a file), the mmdet
# Mask R-CNN / mmseg UperNet training checkpoints of the transfer and the converters' name.
# numpy 1 writes numpy.core.*, numpy 2 numpy._core.*: both spellings name the same object.
CHECKPOINT_GLOBALS = (
    'mmengine.logging.history_buffer.HistoryBuffer',  # message hub log_scalars
    'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',  # ndarray
    'numpy.ndarray', 'numpy.dtype',
    'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar',  # numpy scalars
    '_codecs.encode',  # ndarray bytes under pickle protocol 2
    'builtins.getattr',  # HistoryBuffer's statistics methods; only those (below)
)
# What the restricted ``getattr`` may return: HistoryBuffer pickles its statistics methods
# as getattr(HistoryBuffer, name).
CHECKPOINT_ATTRIBUTES = frozenset(
    f'mmengine.logging.history_buffer.HistoryBuffer.{m}' for m in ('min', 'max', 'current',
                                                                   'mean'))

# How torch's weights-only unpickler (and ours) names what it refused: a global, a type it
# will not build, a function it will not call.
_REFUSED = (re.compile(r'GLOBAL (\S+) (?:was not an allowed global|whose module)'),
            re.compile(r"but got <class '([^']+)'>"),
            re.compile(r'unrecognized function (\S+)'))


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint names types outside the allow-list; nothing of it was run."""

    def __init__(self, filename: str, refused: Sequence[str]):
        self.filename, self.refused = filename, list(refused)
        super().__init__(
            f'Refusing to load {filename}: its pickle names {", ".join(self.refused)}, '
            'outside the types checkpoints of mmengine, mmpretrain, mmdet, mmseg and famt_mm '
            'hold (famt_mm.checkpoint_io.CHECKPOINT_GLOBALS); unpickling it could run code, '
            'so none of it was. If you trust this file, load it in full with '
            f'{TRUST_ENV}={osp.realpath(filename)} (README, "Security").')


def _resolve(name: str):
    """'numpy._core.multiarray.scalar' -> the object (numpy 1 / 2 spellings both resolve)."""
    module, _, attr = name.rpartition('.')
    if module == 'builtins' and attr == 'getattr':
        return allowed_attribute
    for mod in (module, module.replace('numpy._core', 'numpy.core'),
                module.replace('numpy.core', 'numpy._core')):
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f'{name} (in famt_mm.checkpoint_io.CHECKPOINT_GLOBALS) does not import')


def allowed_attribute(obj, name: str):
    """``getattr`` for unpickling: only the attributes in ``CHECKPOINT_ATTRIBUTES``."""
    owner = f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", type(obj))}'
    if not isinstance(obj, type) or f'{owner}.{name}' not in CHECKPOINT_ATTRIBUTES:
        raise pickle.UnpicklingError(
            f'Unsupported global: GLOBAL getattr({owner},{name!r}) was not an allowed global')
    return getattr(obj, name)


def _allowed() -> Dict[str, object]:
    return {name: _resolve(name) for name in CHECKPOINT_GLOBALS}


def _numpy_dtype_classes() -> Dict[str, type]:
    """The classes of numpy's bool and numeric dtypes (``np.dtype('f8')`` is a
    ``numpy.dtypes.Float64DType``): torch's unpickler restores an object's state only for
    allowed types, and the pickles name ``numpy.dtype``, not these."""
    import numpy as np
    classes = {type(np.dtype(code)) for code in '?' + np.typecodes['AllInteger']
               + np.typecodes['AllFloat']}
    return {f'{c.__module__}.{c.__qualname__}': c for c in classes}


def _torch_default_globals() -> Dict[str, object]:
    """torch's own weights-only globals of this version (tensors, storages, dtypes, ...)."""
    from torch import _weights_only_unpickler
    return dict(_weights_only_unpickler._get_allowed_globals())


def _new_torch() -> bool:
    """torch >= 2.6: weights-only load takes (object, name) allow-list entries."""
    major, minor = (int(v) for v in re.findall(r'\d+', torch.__version__)[:2])
    return (major, minor) >= (2, 6) and hasattr(torch.serialization, 'safe_globals')


def _restricted_pickle_module():
    """A pickle module whose Unpickler admits only torch's weights-only globals and ours."""
    import _compat_pickle
    allowed = {**_torch_default_globals(), **_allowed()}

    class RestrictedUnpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in _compat_pickle.NAME_MAPPING:  # protocol 2: __builtin__ ...
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            full = f'{module}.{name}'
            if full not in allowed:
                raise pickle.UnpicklingError(
                    f'Unsupported global: GLOBAL {full} was not an allowed global')
            return allowed[full]

    def load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()

    module = types.ModuleType('famt_restricted_pickle')
    module.Unpickler, module.load = RestrictedUnpickler, load
    return module


def checkpoint_globals(filename: str) -> FrozenSet[str]:
    """Every global the pickle of a ``torch.save`` zip file names, read without unpickling
    (empty for other files)."""
    import _compat_pickle
    if not zipfile.is_zipfile(filename):
        return frozenset()
    with zipfile.ZipFile(filename) as zf:
        records = [n for n in zf.namelist() if n.endswith('data.pkl')]
        data = zf.read(records[0]) if records else b''
    found, strings = set(), []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in ('GLOBAL', 'INST'):
                module, name = arg.split(' ', 1)
                if (module, name) in _compat_pickle.NAME_MAPPING:
                    module, name = _compat_pickle.NAME_MAPPING[(module, name)]
                found.add(f'{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}')
            elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
                found.add(f'{strings[-2]}.{strings[-1]}')
            if isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001  (a damaged pickle: the load reports it)
        pass
    return frozenset(found)


def _refused_types(filename: str, err: Exception) -> Optional[list]:
    """The refused globals / types when ``err`` is an allow-list refusal, else None (a
    damaged file)."""
    text = str(err)
    named = [m for pattern in _REFUSED for m in pattern.findall(text)]
    if not named:
        return None
    known = set(_torch_default_globals()) | set(CHECKPOINT_GLOBALS)
    listed = sorted(checkpoint_globals(filename) - known)
    return listed or named


def trusted_checkpoints(environ=None) -> FrozenSet[str]:
    """The files ``FAMT_TRUSTED_CHECKPOINTS`` names (real paths)."""
    value = (os.environ if environ is None else environ).get(TRUST_ENV, '')
    return frozenset(osp.realpath(osp.expanduser(p)) for p in value.split(os.pathsep) if p)


def load_checkpoint_safely(filename: str, map_location=None, mmap: bool = False):
    """``torch.load`` of a local file with the allow-list (in full if the file is trusted).

    Raises ``FileNotFoundError`` for a missing file and :class:`UnsafeCheckpointError` for a
    file that names other globals; other load errors (a damaged file) pass unchanged.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    kwargs = dict(map_location=map_location, mmap=True) if mmap else dict(
        map_location=map_location)
    if osp.realpath(filename) in trusted_checkpoints():
        return torch.load(filename, weights_only=False, **kwargs)
    try:
        if _new_torch():
            allowed = {**_allowed(), **_numpy_dtype_classes()}
            entries = [(obj, name) for name, obj in allowed.items()]
            with torch.serialization.safe_globals(entries):
                return torch.load(filename, weights_only=True, **kwargs)
        return torch.load(filename, weights_only=False, pickle_module=_restricted_pickle_module(),
                          **kwargs)
    except pickle.UnpicklingError as err:
        refused = _refused_types(filename, err)
        if refused is None:
            raise
        raise UnsafeCheckpointError(filename, refused) from None


def load_from_local(filename, map_location=None):
    """mmengine's local-file checkpoint loader, reading the file as data."""
    return load_checkpoint_safely(filename, map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=os.isatty(0)):
    """mmengine's http(s) loader, reading as data: download into torch's hub cache (rank 0
    first, as mmengine does), then :func:`load_checkpoint_safely` (the cached file is what
    ``FAMT_TRUSTED_CHECKPOINTS`` names)."""
    from urllib.parse import urlparse

    from mmengine.dist import get_dist_info
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))

    def fetch():
        if not osp.isfile(cached):
            os.makedirs(model_dir, exist_ok=True)
            torch.hub.download_url_to_file(filename, cached, None, progress=progress)
        return load_checkpoint_safely(cached, map_location)

    rank, world_size = get_dist_info()
    checkpoint = fetch() if rank == 0 else None
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = fetch()
    return checkpoint


def load_from_model_zoo(filename, map_location=None):
    """mmengine's ``torchvision://``, ``modelzoo://``, ``open-mmlab://``, ``openmmlab://`` and
    ``mmcls://`` loaders, reading as data: the name is resolved to a URL (or a file under
    mmengine's home) with mmengine's own tables, then read as above."""
    from mmengine.runner import checkpoint as mm
    scheme, name = filename.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        return load_from_http(mm.get_torchvision_models()[name], map_location)
    if scheme == 'mmcls':
        ckpt = load_from_http(mm.get_mmcls_models()[name], map_location)
        return mm._process_mmcls_checkpoint(ckpt)
    name = mm.get_deprecated_model_names().get(name, name)
    url = mm.get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location)
    return load_checkpoint_safely(osp.join(mm._get_mmengine_home(), url), map_location)


def register_safe_loaders() -> None:
    """Make mmengine's ``CheckpointLoader`` read local files, http(s) URLs and model-zoo
    names as data (its other schemes, s3 / petrel / pavi, are left as they are)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), loader=load_from_http,
                                     force=True)
    CheckpointLoader.register_scheme(
        prefixes=('torchvision://', 'modelzoo://', 'open-mmlab://', 'openmmlab://', 'mmcls://'),
        loader=load_from_model_zoo, force=True)
