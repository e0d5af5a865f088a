"""Turn an inherited mmpretrain recipe (MAE, SimMIM, any FAMT algorithm) into FAMT from a
short config.

A config that inherits one of mmpretrain's own recipes with ``mmpretrain::`` keeps its
data loader through :func:`famt_train_dataloader` (see README, "Any mmpretrain MAE
recipe", and docs/configs.md)::

    _base_ = 'mmpretrain::mae/mae_vit-large-p16_8xb512-amp-coslr-800e_in1k.py'
    from famt_mm.recipe import famt_model, famt_train_dataloader
    model = famt_model(mask_ratio=0.45, throw_ratio=0.40)
    train_dataloader = famt_train_dataloader(_base_.train_dataloader)

``_base_`` must be the config's first statement: mmengine then reads the file as a
text config, in which an import is allowed and ``_base_`` holds the inherited
variables (an import first would make mmengine treat it as a pure-Python config).

Two things mmengine gets wrong or cannot express for such a config are handled here:

* mmengine tags every dict with a ``type`` of a base loaded through ``pkg::`` with
  ``_scope_``, including the loader's ``collate_fn``; ``Runner.build_dataloader`` then
  passes ``_scope_`` to the collate function (``TypeError: default_collate() got an
  unexpected keyword argument '_scope_'`` at the first batch). The returned loader
  replaces the inherited one (``_delete_``) with a collate_fn without it; a config that
  overrides the loader the usual mm way (``train_dataloader = dict(dataset=dict(
  pipeline=[...]))``) keeps the tagged collate_fn, and :func:`drop_collate_scope`, called
  where famt_mm's tools build the runner, removes it.
* a config cannot edit one element of an inherited list, and the pipeline needs two
  (the crop that records its box, the meta keys FAMT reads): :func:`famt_pipeline`
  derives them from whatever pipeline the recipe has.
"""
import copy

from .datasets import FAMT_META_KEYS


def _type_name(step):
    kind = step.get('type')
    return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))


def _plain(value):
    """ConfigDict / list tree -> plain dicts and lists (a deep copy)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return copy.deepcopy(value)


#: The recipes' crops -> the FAMT crops that record the box (same arguments).
RECORDING_CROP = {
    'RandomResizedCrop': 'FAMTRandomResizedCrop',
    'RandomResizedCropAndInterpolationWithTwoPic':
        'FAMTRandomResizedCropAndInterpolationWithTwoPic',  # BEiT v1 / v2, CAE
}
#: Mask-drawing transforms of the recipes: FAMT's model draws the sets (FAMTMaskGenerator).
PIPELINE_MASK_GENERATORS = ('SimMIMMaskGenerator', 'BEiTMaskGenerator')


def famt_pipeline(pipeline, decode=None):
    """A MIM training pipeline with what FAMT needs, everything else as it was.

    ``RandomResizedCrop`` becomes ``FAMTRandomResizedCrop`` and BEiT's / CAE's
    ``RandomResizedCropAndInterpolationWithTwoPic`` becomes
    ``FAMTRandomResizedCropAndInterpolationWithTwoPic`` (same arguments, same random calls;
    they record the crop box); the recipe's mask-drawing transforms
    (:data:`PIPELINE_MASK_GENERATORS`) are dropped, FAMT's model draws the sets; and
    ``PackInputs`` keeps its meta keys plus ``FAMT_META_KEYS`` (its ``algorithm_keys`` stay).
    Raises ``ValueError`` naming the steps when the pipeline has no such crop, or not one
    PackInputs.

    ``decode`` (e.g. ``'cv2-reduced'``, see ``famt_mm.datasets.decode_crop.DECODERS``):
    the ``LoadImageFromFile`` right before the crop and the crop become one
    ``FAMTDecodeRandomResizedCrop`` that decodes only what the crop needs (same crop
    record; docs/benchmark.md, "The data budget"). ``decode='gpu'``: the loader, the crop and
    the ``RandomFlip`` after it become one ``FAMTJPEGCropRecord`` (file bytes, crop box and
    flip, no pixels) and PackInputs keeps :data:`GPU_PACK_KEYS`; the model's data
    preprocessor must then be ``FAMTGPUDecodePreprocessor`` (:func:`famt_data_preprocessor`).
    ``decode`` needs a ``RandomResizedCrop``.
    """
    if decode == 'gpu':
        return _gpu_pipeline(pipeline)
    out, crops, packs = [], 0, 0
    for step in _plain(list(pipeline)):
        name = _type_name(step).split('.')[-1]
        if name in PIPELINE_MASK_GENERATORS:
            continue
        if name in RECORDING_CROP:
            step['type'] = name = RECORDING_CROP[name]
        if decode is not None and name == 'FAMTRandomResizedCropAndInterpolationWithTwoPic':
            raise ValueError(
                f'famt_pipeline(decode={decode!r}): the decoding crops replace '
                f'RandomResizedCrop only, this pipeline crops with {name}; drop decode=')
        if decode is not None and name == 'FAMTRandomResizedCrop':
            step = _decoding_crop(out, step, decode)
        if name in RECORDING_CROP.values():
            crops += 1
        if name == 'PackInputs':
            keys = tuple(step.get('meta_keys') or ('sample_idx', 'img_path'))
            step['meta_keys'] = keys + tuple(k for k in FAMT_META_KEYS if k not in keys)
            packs += 1
        out.append(step)
    if crops != 1 or packs != 1:
        raise ValueError(
            f'famt_pipeline: FAMT needs exactly one {" or ".join(RECORDING_CROP)} (its weight '
            f'maps follow that crop) and one PackInputs in the training pipeline; '
            f'found {crops} and {packs} in {[_type_name(s) for s in pipeline]} (a torchvision/ '
            'crop or flip records neither box nor flip: use the mmpretrain transforms)')
    return out


def _decoding_crop(steps_before, crop, decode):
    """``crop`` merged with the loader that ends ``steps_before`` (removed from it)."""
    load = steps_before[-1] if steps_before else {}
    extra = set(load) - {'type', 'backend_args', 'ignore_empty', '_scope_'}
    if not _type_name(load).endswith('LoadImageFromFile') or extra:
        raise ValueError(
            f'famt_pipeline(decode={decode!r}): the crop must follow a plain '
            f'LoadImageFromFile (only backend_args / ignore_empty set), found '
            f'{load or "nothing"} before it; drop decode= for this pipeline')
    steps_before.pop()
    crop = dict(crop, type='FAMTDecodeRandomResizedCrop', decode=decode,
                ignore_empty=load.get('ignore_empty', False))
    if load.get('backend_args') is not None:
        crop['backend_args'] = load['backend_args']
    crop.pop('_scope_', None)
    return crop


#: What PackInputs keeps beyond FAMT_META_KEYS on the GPU path: the preprocessor's input.
GPU_PACK_KEYS = ('img_shape', 'jpeg', 'crop_xywh')


def _gpu_pipeline(pipeline):
    """``famt_pipeline(pipeline, decode='gpu')``: load + crop + flip -> FAMTJPEGCropRecord."""
    steps = famt_pipeline(pipeline)
    names = [_type_name(s).split('.')[-1] for s in steps]
    if 'FAMTRandomResizedCrop' not in names:
        raise ValueError(
            "famt_pipeline(decode='gpu'): the GPU path replaces RandomResizedCrop only, this "
            f'pipeline crops with {names}; drop decode=')
    at = names.index('FAMTRandomResizedCrop')
    record = _decoding_crop(steps[:at], steps[at], 'gpu')
    record.pop('decode'), record.pop('ignore_empty')
    if record.get('interpolation', 'bilinear') != 'bicubic' or record.get('backend') != 'pillow':
        raise ValueError(
            "famt_pipeline(decode='gpu'): the GPU path resizes with antialiased bicubic, "
            "which matches RandomResizedCrop(backend='pillow', interpolation='bicubic') "
            f"only; the recipe's crop has {steps[at]}. Drop decode= for this pipeline")
    after = steps[at + 1:]
    flips = [s for s in after if _type_name(s).split('.')[-1] == 'RandomFlip']
    others = [s for s in after if s not in flips and _type_name(s).split('.')[-1] != 'PackInputs']
    if others or len(flips) > 1 or any(
            f.get('direction', 'horizontal') != 'horizontal' for f in flips):
        raise ValueError(
            "famt_pipeline(decode='gpu'): after the crop the GPU path does one horizontal "
            f'RandomFlip only (on the device), found {[_type_name(s) for s in after]}; '
            'drop decode= for this pipeline')
    record.update(type='FAMTJPEGCropRecord', flip_prob=flips[0].get('prob', 0.5) if flips
                  else None)
    pack = dict(steps[names.index('PackInputs')])
    pack['meta_keys'] = tuple(pack['meta_keys']) + tuple(
        k for k in GPU_PACK_KEYS if k not in pack['meta_keys'])
    return steps[:at - 1] + [record, pack]


def famt_data_preprocessor(decode=None):
    """Merged onto the inherited ``data_preprocessor`` (mean, std, to_rgb stay): with
    ``decode='gpu'`` the type that decodes the batch on the model's device, else nothing."""
    return dict(type='FAMTGPUDecodePreprocessor') if decode == 'gpu' else {}


def famt_model(algorithm: str = 'MAE', **mask_generator):
    """What turns the inherited mmpretrain model ``algorithm`` (its registered type: 'MAE',
    'SimMIM', ...) into FAMT, merged onto it by mmengine: the FAMT types its FAMT algorithm
    declares (``famt_types``; same parameters as the plain ones) and
    ``FAMTMaskGenerator(**mask_generator)``; the recipe's arch, patch size, decoder and loss
    stay as they are. Every generator argument passes through, e.g. the warm-up throw:
    ``famt_model(mask_ratio=0.45, throw_ratio=0.40, random_mask_ratio=0.45,
    random_throw_ratio=0.40)``. An algorithm without FAMT raises ``KeyError`` naming those
    with it."""
    from .models.famt_algorithm import famt_algorithm_for
    model = copy.deepcopy(famt_algorithm_for(algorithm).famt_types)
    model['mask_generator'] = dict(type='FAMTMaskGenerator', **mask_generator)
    return model


def drop_collate_scope(cfg):
    """Remove the ``_scope_`` mmengine puts into every loader's ``collate_fn`` (in place).

    ``Runner.build_dataloader`` passes every key of ``collate_fn`` but ``type`` to the
    function, so ``_scope_`` would reach ``default_collate`` as a keyword. The Runner looks
    the name up under the config's ``default_scope``; where the tagged scope would find
    another function this raises ``ValueError`` naming the loader and the fix.
    """
    from mmengine.registry import FUNCTIONS
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        collate = (cfg.get(key) or {}).get('collate_fn')
        if not isinstance(collate, dict) or '_scope_' not in collate:
            continue
        scope = collate.pop('_scope_')
        name, default = collate.get('type'), cfg.get('default_scope')
        if not isinstance(name, str) or scope == default:
            continue
        found = []
        for where in (scope, default):
            with FUNCTIONS.switch_scope_and_registry(where) as registry:
                found.append(registry.get(name))
        if found[0] is not found[1]:
            raise ValueError(
                f"{key}.collate_fn: {name!r} of scope {scope!r} is not the {name!r} the "
                f'runner finds under default_scope={default!r}; give the function itself, '
                f'collate_fn=dict(type=<the function>), in the config')


def famt_train_dataloader(train_dataloader, decode=None):
    """The inherited training loader, FAMT pipeline (``decode``: see :func:`famt_pipeline`),
    without mmengine's ``_scope_`` in ``collate_fn``; it replaces the inherited loader as a
    whole (``_delete_``)."""
    loader = _plain(train_dataloader)
    loader['dataset']['pipeline'] = famt_pipeline(loader['dataset']['pipeline'], decode)
    collate = loader.get('collate_fn')
    if isinstance(collate, dict):
        collate.pop('_scope_', None)
    loader['_delete_'] = True
    return loader
