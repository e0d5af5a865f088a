"""Start-up checks of the pipelines FAMT depends on: the training pipeline must record the crop
box at the model's input size and keep the geometry the mask generator maps, the refresh pipeline
must show the whole, un-augmented image, and ``sample_idx`` must be the dataset position.

Each check raises ``ValueError`` naming the transform (or key) and the fix (docs/method.md
section 3, docs/design.md "Pipelines FAMT can follow").
"""
from typing import List, Optional, Sequence, Tuple

from mmcv.transforms import LoadImageFromFile

from .decode_crop import FAMTDecodeRandomResizedCrop, FAMTJPEGCropRecord
from .loading import FAMTLoadImageFromFile
from .transforms import (AUGMENTING, GEOMETRIC, FAMTRandomResizedCrop,
                         FAMTRandomResizedCropAndInterpolationWithTwoPic, transform_name)

#: Meta keys ``FAMTMaskGenerator.crop_weights`` reads from every data sample.
GENERATOR_META_KEYS = ('sample_idx', 'famt_crop', 'flip', 'flip_direction')

#: Name parts of transforms that move, cut, pad or warp the image: after the recording crop
#: they would leave ``famt_crop`` describing another picture. Augmentation policies and
#: wrappers whose steps cannot be read (RandAugment, AutoAugment, Albumentations) count too.
MOVING = ('Crop', 'Flip', 'Resize', 'Rotate', 'Shear', 'Translate', 'Affine', 'Perspective',
          'Pad', 'Rescale', 'RandAugment', 'AutoAugment', 'Albumentations',
          'MultiView', 'Mosaic', 'Expand')

#: Whole-image resizes: before the crop they keep normalised coordinates, so the box still
#: describes the crop within the whole image (which is what the bank is computed on).
WHOLE_IMAGE_RESIZES = ('Resize', 'ResizeEdge', 'RandomResize')


def check_refresh_pipeline(pipeline: Sequence) -> None:
    """The refresh pipeline must not augment, crop or flip (weights are per whole image)."""
    bad = [transform_name(t) for t in pipeline
           if any(a in transform_name(t) for a in AUGMENTING + GEOMETRIC)]
    if bad:
        raise ValueError(f'FAMTWeightHook: the refresh pipeline must not augment, crop '
                         f'or flip, but has {bad}; weights are computed on the whole '
                         'image resized to the input size')


def _flat(transforms) -> List[Tuple[int, object]]:
    """(top-level position, transform) of every transform, wrappers' inner steps included."""
    out = []
    for pos, t in enumerate(transforms):
        out.append((pos, t))
        inner = getattr(t, 'transforms', None)
        inner = getattr(inner, 'transforms', inner)  # RandomApply holds a Compose
        if isinstance(inner, (list, tuple)):
            out += [(pos, s) for _, s in _flat(inner)]
    return out


#: The crops that record ``famt_crop``; the two-picture one (BEiT, CAE) records it in the
#: coordinates of the image before a RandomFlip, so the flip may come before it.
RECORDING_CROPS = (FAMTRandomResizedCrop, FAMTRandomResizedCropAndInterpolationWithTwoPic)


def _moves(t) -> bool:
    # mmpretrain's torchvision wrapper hides the transform's name in ``t.t``
    name = transform_name(t) + type(getattr(t, 't', None)).__name__
    return any(part in name for part in MOVING)


def _inner_datasets(dataset) -> list:
    """The datasets a wrapper (RepeatDataset, ConcatDataset, ClassBalancedDataset) reads."""
    if getattr(getattr(dataset, 'pipeline', None), 'transforms', None) is not None:
        return [dataset]
    inner = getattr(dataset, 'datasets', None) or [getattr(dataset, 'dataset', None)]
    return [d for sub in inner if sub is not None for d in _inner_datasets(sub)]


def check_sample_idx(dataset, probes: Sequence[int] = (0, -1)) -> None:
    """``sample_idx`` of the samples at ``probes`` must be their position in ``dataset``.

    The bank is indexed by ``sample_idx``; wrappers (RepeatDataset, ConcatDataset) restart it.
    Reads ``get_data_info`` only (no image decoded, no random state used).
    """
    if not hasattr(dataset, 'get_data_info') or len(dataset) == 0:
        return
    for probe in probes:
        pos = probe % len(dataset)
        packed = dataset.get_data_info(pos).get('sample_idx')
        if packed is None:
            raise ValueError(
                f'FAMTWeightHook: the training set ({type(dataset).__name__}) gives no '
                f'sample_idx for position {pos}; the weight bank is indexed by it. Use a '
                'dataset whose get_data_info sets sample_idx (any mmengine BaseDataset)')
        if int(packed) != pos:
            raise ValueError(
                f'FAMTWeightHook: position {pos} of the training set '
                f'({type(dataset).__name__}) has sample_idx={packed}; the weight bank is '
                'indexed by sample_idx, so it must equal the position. Dataset wrappers '
                '(RepeatDataset, ConcatDataset, ClassBalancedDataset) restart it: list all '
                'images in one dataset (e.g. one ann_file) and repeat with more epochs')


def check_decode_switch(transforms, preprocessor) -> None:
    """``decode='gpu'`` is set in both places or in neither: a pipeline of
    ``FAMTJPEGCropRecord`` (bytes, no pixels) needs ``FAMTGPUDecodePreprocessor``, which
    decodes them, and that preprocessor without the record would train on what it was given
    while the config asks for the GPU path."""
    from ..models.gpu_decode_preprocessor import (GPU_DECODE_META_KEYS,
                                                  FAMTGPUDecodePreprocessor)
    records = [i for i, t in enumerate(transforms) if isinstance(t, FAMTJPEGCropRecord)]
    on_device = isinstance(preprocessor, FAMTGPUDecodePreprocessor)
    if records and not on_device:
        raise ValueError(
            "FAMTWeightHook: the training loader is built with decode='gpu' "
            '(FAMTJPEGCropRecord: file bytes, no pixels) but the model\'s data preprocessor is '
            f'{type(preprocessor).__name__}; add data_preprocessor = '
            "famt_data_preprocessor(decode='gpu') (famt_mm.recipe) to the config")
    if on_device and not records:
        raise ValueError(
            'FAMTWeightHook: the data preprocessor is FAMTGPUDecodePreprocessor but the '
            "training pipeline decodes on the CPU; build the loader with famt_train_dataloader("
            "..., decode='gpu') (famt_mm.recipe), or drop the preprocessor switch")
    if not records:
        return
    if records[0] != len(transforms) - 2 or type(transforms[-1]).__name__ != 'PackInputs':
        raise ValueError(
            'FAMTWeightHook: FAMTJPEGCropRecord must be followed by PackInputs only (there are '
            f'no pixels to transform on the CPU), found '
            f'{[transform_name(t) for t in transforms[records[0] + 1:]]}')
    missing = [k for k in GPU_DECODE_META_KEYS + ('img_shape', )
               if k not in transforms[-1].meta_keys]
    if missing:
        raise ValueError(
            f'FAMTWeightHook: PackInputs must keep {missing} in meta_keys on the GPU decoding '
            "path; build the loader with famt_train_dataloader(..., decode='gpu')")


def check_train_pipeline(dataset, input_hw: Tuple[int, int], grid_hw: Tuple[int, int],
                         on_bad_image: str = 'fail', preprocessor=None) -> Optional[str]:
    """Check the training set and its pipeline; return a warning to log, or None.

    The pipeline must crop with one of :data:`RECORDING_CROPS` at the model's input size
    ``input_hw`` (H, W); before it only loading, pixel changes and whole-image resizes (and
    the RandomFlip, for the two-picture crop); after it no transform that moves the image
    except ``RandomFlip`` (mmcv's three directions are all mapped by
    ``map_weights_to_crop``); at most one ``RandomFlip``; and
    ``PackInputs`` must keep :data:`GENERATOR_META_KEYS`. ``sample_idx`` must be the dataset
    position (:func:`check_sample_idx`). Wrapped datasets are checked through their inner ones.
    With ``preprocessor`` (the model's) the ``decode='gpu'`` switch is checked too
    (:func:`check_decode_switch`).
    """
    check_sample_idx(dataset)
    warning = None
    for inner in _inner_datasets(dataset):
        if preprocessor is not None:
            check_decode_switch(list(inner.pipeline.transforms), preprocessor)
        warning = _check_transforms(list(inner.pipeline.transforms), input_hw, grid_hw,
                                    on_bad_image) or warning
    return warning


def _check_transforms(transforms, input_hw, grid_hw, on_bad_image) -> Optional[str]:
    crops = [i for i, t in enumerate(transforms) if isinstance(t, RECORDING_CROPS)]
    if not crops:
        raise ValueError(
            'FAMTWeightHook: the training pipeline does not record the crop box; replace '
            'RandomResizedCrop by FAMTRandomResizedCrop (same arguments), or '
            'RandomResizedCropAndInterpolationWithTwoPic by '
            'FAMTRandomResizedCropAndInterpolationWithTwoPic (famt_mm.recipe.famt_pipeline '
            'does both)')
    if len(crops) > 1:
        raise ValueError(
            f'FAMTWeightHook: the training pipeline has {len(crops)} recording crops '
            f'({", ".join(transform_name(transforms[i]) for i in crops)}); the second box '
            'would be in the first crop\'s coordinates. Keep one')
    at = crops[0]
    crop, crop_name = transforms[at], transform_name(transforms[at])
    two_pic = isinstance(crop, FAMTRandomResizedCropAndInterpolationWithTwoPic)
    # (h, w): RandomResizedCrop's scale is (h, w), the two-picture crop's size is (w, h)
    crop_hw = tuple(crop.size[::-1]) if two_pic else tuple(crop.scale)
    if crop_hw != tuple(input_hw):
        raise ValueError(
            f'FAMTWeightHook: {crop_name} makes {crop_hw[0]}x{crop_hw[1]} crops '
            f'but the model takes {input_hw[0]}x{input_hw[1]} inputs (backbone img_size, '
            f'{tuple(grid_hw)} patches); set the crop scale to the model input size')
    flips = [pos for pos, t in _flat(transforms) if type(t).__name__ == 'RandomFlip']
    if len(flips) > 1:
        raise ValueError(
            f'FAMTWeightHook: the training pipeline has {len(flips)} RandomFlip; each '
            'overwrites the packed `flip` of the one before, so the weight maps would not '
            'follow the image. Keep one')
    for pos, t in _flat(transforms):
        name = transform_name(t)
        if type(t).__name__ == 'RandomFlip':
            if pos < at and not two_pic:
                raise ValueError(
                    f'FAMTWeightHook: RandomFlip comes before {crop_name} in the '
                    'training pipeline: the recorded box would be in the flipped image. Move '
                    f'RandomFlip after {crop_name}')
            continue
        if pos < at and _moves(t) and type(t).__name__ not in WHOLE_IMAGE_RESIZES:
            raise ValueError(
                f'FAMTWeightHook: {name} comes before {crop_name} in the training '
                'pipeline: the recorded box would be in the coordinates of the '
                f'{name} output, not of the whole image the weights are computed on. Remove '
                f'{name} (only loading, pixel changes and whole-image resizes may come first)')
        if pos > at and _moves(t):
            raise ValueError(
                f'FAMTWeightHook: {name} comes after {crop_name} in the training '
                'pipeline: FAMT maps the weights to the crop box and to RandomFlip only, '
                f'so the masks would not follow what {name} does to the image. Remove it '
                f'(or, for a resize or crop, do it through {crop_name})')
    packs = [t for t in transforms if type(t).__name__ == 'PackInputs']
    missing = [k for k in GENERATOR_META_KEYS if packs and k not in packs[-1].meta_keys]
    if missing:
        raise ValueError(
            f'FAMTWeightHook: PackInputs must keep {", ".join(repr(k) for k in missing)} in '
            'meta_keys: the mask generator reads them to map each weight map onto its crop '
            '(a dropped flip leaves the maps of flipped crops unflipped); use '
            'PackInputs(meta_keys=famt_mm.datasets.FAMT_META_KEYS)')
    loads = [t for t in transforms
             if isinstance(t, (LoadImageFromFile, FAMTDecodeRandomResizedCrop))]
    # FAMTLoadImageFromFile (and the decoding crop) honour ignore_empty with any decoder;
    # mmcv's only with pillow (cv2 returns None silently, then trips an assert naming no file).
    if on_bad_image == 'skip' and loads and not (loads[0].ignore_empty and (
            isinstance(loads[0], (FAMTLoadImageFromFile, FAMTDecodeRandomResizedCrop))
            or loads[0].imdecode_backend == 'pillow')):
        return ("FAMTWeightHook(on_bad_image='skip') covers the refresh pass only: the "
                'training pipeline will still stop on an unreadable image. To have mmengine '
                'replace such an image by another one during training, use '
                'FAMTLoadImageFromFile(ignore_empty=True)')
    return None
